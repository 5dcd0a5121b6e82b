"""Measurement done one way everywhere: wall time (CUDA-synchronised, warm-up, median), peak memory
(CPU RSS / CUDA allocator), and this machine's memory bandwidth for roofline fractions."""
from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Callable, Dict, Optional

import torch


def synchronize(device: Optional[torch.device] = None) -> None:
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], object], repeat: int = 10, warmup: int = 2,
            device: Optional[torch.device] = None) -> Dict[str, float]:
    """Median, min and max seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def memory_bandwidth(nbytes: int = 256 * 2**20, device: str = "cpu", repeat: int = 5) -> float:
    """Copy bandwidth in bytes/s: a ``nbytes`` tensor copied into a preallocated one, counting bytes read
    plus bytes written (the ceiling a memory-bound kernel is compared with)."""
    src = torch.rand(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: dst.copy_(src), repeat=repeat, warmup=1, device=torch.device(device))["median"]
    return 2 * nbytes / t


def gather_bandwidth(nbytes: int = 256 * 2**20, row_bytes: int = 256, device: str = "cpu", repeat: int = 5) -> float:
    """Random-row bandwidth in bytes/s: the rows of a ``nbytes`` float32 tensor (``row_bytes`` each, 64 floats
    by default, a row of ``x`` at D = 64) read in a random order into a preallocated one, counting bytes read
    plus bytes written. The ceiling of a kernel whose every edge fetches a row from a random place, as an
    SpMM does on a graph without locality: each row costs a memory round-trip, which the copy's streaming
    hides."""
    if row_bytes % 4 or row_bytes <= 0:
        raise ValueError(f"row_bytes must be a positive multiple of 4 (float32 rows), got {row_bytes}")
    rows = nbytes // row_bytes
    src = torch.rand(rows, row_bytes // 4, device=device)
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(0)).to(device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: torch.index_select(src, 0, order, out=dst), repeat=repeat, warmup=1,
                device=torch.device(device))["median"]
    return 2 * rows * row_bytes / t

