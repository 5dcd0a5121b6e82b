"""keep_freed_memory: large tensors stop coming from mmap (observed through glibc's mallinfo2)."""
import ctypes
import ctypes.util

import pytest
import torch

from beltrami.allocator import glibc_malloc_available, keep_freed_memory

pytestmark = pytest.mark.skipif(not glibc_malloc_available(), reason="glibc's mallopt only")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mmapped_bytes() -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().hblkhd


def test_large_tensors_leave_mmap_and_default_comes_back():
    big = 64 * 2**20 // 4  # 64 MiB of float32, far above glibc's largest mmap threshold
    try:
        assert keep_freed_memory() is True
        before = _mmapped_bytes()
        x = torch.ones(big)
        assert _mmapped_bytes() - before < 2**20  # served from the heap
        del x
    finally:
        assert keep_freed_memory(False) is True
    before = _mmapped_bytes()
    y = torch.ones(big)
    assert _mmapped_bytes() - before >= 4 * big  # the default again: its own mapping
    del y
