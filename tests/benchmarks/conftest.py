"""Shared fixtures of the pytest-benchmark micro-benchmarks (run: python -m pytest -m benchmark tests/benchmarks).

``BELTRAMI_BENCH_DEVICE=cuda`` runs them on the GPU: graphs and tensors live there, every timed step ends
with a synchronisation, and the bandwidth they are compared with is the GPU's own copy bandwidth.
``BELTRAMI_BENCH_ALLOCATOR=pooled`` takes every big CPU tensor from the C++ kernels' buffer pool,
``BELTRAMI_BENCH_ALLOCATOR=keep-freed`` makes glibc's malloc keep freed memory (:mod:`beltrami.allocator`);
by default it is left as it is, as ``beltrami-bench`` does. Huge pages need ``THP_MEM_ALLOC_ENABLE=1`` in the
environment pytest starts with (``BELTRAMI_BENCH_ALLOCATOR=huge-pages`` stops the session if they are off);
every result records whether they were on."""
import os
from typing import NamedTuple

import pytest
import torch

import beltrami
from beltrami.allocator import ALLOCATORS, ensure_huge_pages, huge_pages_active, keep_freed_memory, pool_cpu_tensors
from beltrami.bench.measure import gather_bandwidth, memory_bandwidth, synchronize

DEVICE = torch.device(os.environ.get("BELTRAMI_BENCH_DEVICE", "cpu"))
ALLOCATOR = os.environ.get("BELTRAMI_BENCH_ALLOCATOR", "system")
if ALLOCATOR not in ALLOCATORS:
    raise ValueError(f"BELTRAMI_BENCH_ALLOCATOR must be one of {', '.join(ALLOCATORS)}, got {ALLOCATOR!r}")

SIZES = {"20k": dict(num_nodes=20_000, num_edges=100_000), "arxiv": None, "arxiv-local": "local"}


def local_graph(num_nodes: int = 169_343, num_edges: int = 1_166_243, window: int = 1024) -> beltrami.Graph:
    """ogbn-arxiv's size with locality: every edge joins nodes at most ``window`` ids apart (symmetrised).

    The CSBM's neighbours are uniform over the whole graph, so each gathered row of x comes from DRAM; real
    graphs, ordered by crawl, community or a bandwidth-reducing permutation (RCM), reuse rows from cache.
    The two bracket what a real graph of this size costs."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(0, num_nodes, (num_edges,), generator=g)
    dst = (src + torch.randint(-window, window + 1, (num_edges,), generator=g)).clamp(0, num_nodes - 1)
    return beltrami.Graph.from_edge_index(torch.stack([src, dst]), num_nodes).symmetrize().remove_self_loops()


@pytest.fixture(scope="session", autouse=True)
def allocator():
    """Apply ``BELTRAMI_BENCH_ALLOCATOR`` for the benchmark session (only when benchmarks run)."""
    if ALLOCATOR == "pooled":
        pool_cpu_tensors()
    if ALLOCATOR == "keep-freed":
        keep_freed_memory()
    if ALLOCATOR == "huge-pages":
        ensure_huge_pages()  # says to set THP_MEM_ALLOC_ENABLE=1 before pytest starts if it is not
    yield
    keep_freed_memory(False)
    if ALLOCATOR == "pooled":
        pool_cpu_tensors(False)


class Bandwidth(NamedTuple):
    copy: float  # bytes/s of a large tensor copy: the target's reference
    gather: float  # bytes/s of reading 256-byte rows in a random order: the ceiling on graphs without locality


@pytest.fixture
def bandwidth() -> Bandwidth:
    """The device's copy and random-row bandwidths (bytes/s), measured just before each benchmark (1 GiB on a
    GPU, whose copy of 256 MiB would take a tenth of a millisecond). Measured once per session they drifted
    away from the kernels' timings: on the shared 2-core machine the copy read 32 to 63 GB/s from one session
    to the next, and a minute apart within one."""
    nbytes = 2**30 if DEVICE.type == "cuda" else 256 * 2**20
    return Bandwidth(memory_bandwidth(nbytes, device=DEVICE), gather_bandwidth(nbytes, device=DEVICE))


@pytest.fixture(scope="session", params=list(SIZES))
def graph(request) -> beltrami.Graph:
    """n=20,000 with E~200,000 directed edges, the ogbn-arxiv-sized CSBM (169,343 nodes, ~2.3M edges), or a
    graph of the same size with locality."""
    spec = SIZES[request.param]
    if spec == "local":
        return local_graph().to(DEVICE)
    if spec is None:
        return beltrami.load_dataset("synthetic-arxiv", lcc=False).graph.to(DEVICE)
    return beltrami.load_dataset("synthetic", lcc=False, num_classes=10, num_features=8, **spec).graph.to(DEVICE)


def synced(fn):
    """``fn`` followed by a device synchronisation, so that a GPU step is timed to its end."""
    def step(*args):
        out = fn(*args)
        synchronize(DEVICE)
        return out
    return step


def record(benchmark, bandwidth: Bandwidth, nbytes: int, **info) -> None:
    """Attach the byte model, the achieved bandwidth and its fractions of the copy and random-row bandwidths,
    and the thread count (all of the machine's cores unless ``OMP_NUM_THREADS`` says otherwise)."""
    seconds = benchmark.stats.stats.median
    achieved = nbytes / seconds
    benchmark.extra_info.update(info, device=str(DEVICE), allocator=ALLOCATOR, threads=torch.get_num_threads(),
                                huge_pages=huge_pages_active())
    benchmark.extra_info.update(bytes=nbytes, achieved_GBps=achieved / 1e9, machine_GBps=bandwidth.copy / 1e9,
                                fraction_of_bandwidth=achieved / bandwidth.copy, gather_GBps=bandwidth.gather / 1e9,
                                fraction_of_gather_bandwidth=achieved / bandwidth.gather)
    torch.manual_seed(0)
