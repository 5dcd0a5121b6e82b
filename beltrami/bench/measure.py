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
