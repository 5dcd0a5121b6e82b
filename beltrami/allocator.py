"""Large CPU tensors without page faults: glibc's malloc told to keep freed memory.

PyTorch's CPU allocator has no cache: every tensor is a ``malloc`` and every free a ``free``. glibc serves
blocks above its mmap threshold (32 MiB at most) with a fresh ``mmap`` and gives them back with ``munmap``,
so each new ``[E, H]`` tensor of an arxiv-sized graph (37 MB for 2.3M edges and 4 heads) is page-faulted
in from scratch. Measured on the 2-core machine, one thread: an elementwise product into a fresh 40 MB
tensor takes 15-20 ms, into a reused buffer 3.4 ms; one Beltrami function evaluation forward+backward at
arxiv size took 1.2-1.6x longer with the default allocator than with the setting below (``docs/design-notes.md``).

:func:`keep_freed_memory` sets ``M_MMAP_MAX = 0`` (large blocks come from the heap, so a freed block is
reused by the next tensor of its size) and a high ``M_TRIM_THRESHOLD`` (the heap is not handed back to
the system after every free). The price is memory: freed blocks stay with the process and the heap
fragments. Side by side, training BLEND (rk4, direct) on the arxiv-sized graph, one thread: 1.16-1.27x
faster epochs at 2.6-2.7x the peak RSS (2.6 GB to 6.8 GB); +25% on one function evaluation. So it is
opt-in and process-wide: ``fit(keep_freed_memory=True)``, ``beltrami-bench --allocator keep-freed``,
``tools/reproduce.py --allocator keep-freed``. Transparent huge pages for malloc's mappings
(``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``, THP in ``madvise`` mode here) sped up one function evaluation
1.3x but not the training epochs. Preloading jemalloc or tcmalloc is the other well-known route.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys

ALLOCATORS = ("system", "keep-freed")
"""The choices of the ``--allocator`` options: glibc's defaults, or :func:`keep_freed_memory`."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# glibc's documented defaults, restored by keep_freed_memory(False)
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_KEEP_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int


def glibc_malloc_available() -> bool:
    """Whether this process's C library is glibc (whose ``mallopt`` :func:`keep_freed_memory` calls)."""
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_freed_memory(enable: bool = True) -> bool:
    """Let glibc's malloc keep freed memory for reuse (``enable=True``) or restore its defaults.

    Returns:
        True when applied; False where the C library is not glibc (macOS, Windows, musl), in which case
        nothing changes.
    """
    if not glibc_malloc_available():
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mmap_max, trim = (0, _KEEP_TRIM_THRESHOLD) if enable else (_DEFAULT_MMAP_MAX, _DEFAULT_TRIM_THRESHOLD)
    # mallopt returns 1 on success
    return bool(libc.mallopt(_M_MMAP_MAX, mmap_max)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim))
