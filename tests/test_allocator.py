"""pool_cpu_tensors: big tensors reuse freed blocks, bounded, and PyTorch's allocator comes back;
keep_freed_memory: large tensors stop coming from mmap (observed through glibc's mallinfo2); huge pages:
observed in /proc/self/smaps, switched on only before the first tensor."""
import ctypes
import ctypes.util
import os
import subprocess
import sys
import warnings

import pytest
import torch

import beltrami
from beltrami.allocator import (HUGE_PAGES_ENV, cpu_tensors_pooled, ensure_huge_pages, freed_memory_kept,
                                glibc_malloc_available, huge_pages_active, huge_pages_supported, keep_freed_memory,
                                pool_cpu_tensors, pooled_cpu_tensors, use_huge_pages)
from beltrami.sparse import available_backends, buffer_pool_bytes, release_buffers

_needs_glibc = pytest.mark.skipif(not glibc_malloc_available(), reason="glibc's mallopt only")
MIB = 2**20


@pytest.mark.skipif("cpp" not in available_backends(), reason="the pool lives in the C++ kernels")
def test_pooled_cpu_tensors_reuse_freed_blocks_within_bounds_and_the_default_comes_back():
    release_buffers()
    try:
        pool_cpu_tensors()
        assert cpu_tensors_pooled()
        x = torch.ones(MIB)  # 4 MiB of float32
        assert buffer_pool_bytes() == (4 * MIB, 4 * MIB)
        ptr = x.data_ptr()
        del x
        y = torch.empty(MIB)
        assert y.data_ptr() == ptr
        assert torch.ones(1000).sum() == 1000 and buffer_pool_bytes()[1] == 4 * MIB  # small: not pooled
        # sizes that never repeat, each freed at once: the pool holds no more than the most bytes ever in
        # use together (y and the largest of them, 13.75 MiB), where keeping them all would hold 180 MiB
        for k in range(4, 40):
            torch.ones(k * MIB // 16)
        held, in_use = buffer_pool_bytes()
        assert in_use == 4 * MIB and held <= 4 * MIB + 39 * MIB // 4
    finally:
        pool_cpu_tensors(False)
    assert not cpu_tensors_pooled()
    z = torch.ones(2 * MIB)  # PyTorch's allocator again
    assert buffer_pool_bytes()[1] == 4 * MIB
    del y  # made by the pool: its memory goes back there
    assert buffer_pool_bytes()[1] == 0 and z.sum() == 2 * MIB
    assert release_buffers() > 0 and buffer_pool_bytes() == (0, 0)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mmapped_bytes() -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().hblkhd


@_needs_glibc
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
    # the default again: a big tensor gets its own mapping. malloc serves even a big request from a free
    # heap region large enough, and x's 64 MiB stay free in the heap (freed while trimming was off), next
    # to whatever earlier tests left free there (twice x's size was sometimes not enough in the full
    # suite). So 4 GiB, never touched: address space, no memory.
    before = _mmapped_bytes()
    y = torch.empty(64 * big)
    assert _mmapped_bytes() - before >= 4 * y.numel()
    del y


_needs_thp = pytest.mark.skipif(not huge_pages_supported(), reason="transparent huge pages off in this kernel")


def _run(code: str, **env) -> str:
    environ = {k: v for k, v in os.environ.items() if k != HUGE_PAGES_ENV}
    out = subprocess.run([sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@_needs_thp
def test_huge_pages_are_observed_only_with_the_variable_set():
    probe = "from beltrami.allocator import huge_pages_active; print(huge_pages_active())"
    assert _run(probe) == "False"
    assert _run(probe, **{HUGE_PAGES_ENV: "1"}) == "True"


@_needs_thp
def test_ensure_huge_pages_relaunches_a_command_with_the_variable():
    code = ("import os, torch; x = torch.ones(10); from beltrami.allocator import ensure_huge_pages, "
            "huge_pages_active; ensure_huge_pages(relaunch=True); print(os.environ['THP_MEM_ALLOC_ENABLE'], "
            "huge_pages_active())")
    assert _run(code) == "1 True"


@_needs_thp
def test_too_late_in_a_process_is_a_clear_error(monkeypatch):
    if os.environ.get(HUGE_PAGES_ENV) == "1":
        pytest.skip("this test process was started with huge pages")
    assert not huge_pages_active()  # no false positive from memory NumPy flagged (the datasets tests make some)
    monkeypatch.delenv(HUGE_PAGES_ENV, raising=False)
    with pytest.raises(RuntimeError, match="set THP_MEM_ALLOC_ENABLE=1 in the environment before Python starts"):
        use_huge_pages()
    monkeypatch.setenv(HUGE_PAGES_ENV, "1")  # set, yet without effect: no endless relaunch
    with pytest.raises(RuntimeError, match="is set but PyTorch's CPU allocator does not use huge pages"):
        ensure_huge_pages(relaunch=True)


def test_big_cpu_graphs_trained_by_the_adjoint_without_huge_pages_get_a_hint(monkeypatch):
    import importlib

    from beltrami.training.config import FitConfig

    fit_module = importlib.import_module("beltrami.training.fit")
    monkeypatch.setattr(fit_module, "huge_pages_supported", lambda: True)
    monkeypatch.setattr(fit_module, "huge_pages_active", lambda: False)
    big, adjoint = fit_module.HUGE_PAGES_HINT_NODES, FitConfig.build(backprop="adjoint")
    with pytest.warns(UserWarning, match="without huge pages: set THP_MEM_ALLOC_ENABLE=1.*pool_memory=True"):
        fit_module._suggest_huge_pages(adjoint, big)
    with pytest.warns(UserWarning, match=r"size\); see"):  # the pool is on already: not suggested
        fit_module._suggest_huge_pages(FitConfig.build(backprop="adjoint", pool_memory=True), big)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_module._suggest_huge_pages(adjoint, big - 1)  # small graphs: silent
        fit_module._suggest_huge_pages(FitConfig.build(backprop="direct"), big)  # measured slower there
        on_cuda = FitConfig.build(backprop="adjoint")
        on_cuda.run.device = "cuda"  # set after the checks, which refuse CUDA where there is none
        fit_module._suggest_huge_pages(on_cuda, big)
        monkeypatch.setattr(fit_module, "huge_pages_active", lambda: True)
        fit_module._suggest_huge_pages(adjoint, 10 * big)


@pytest.mark.skipif("cpp" not in available_backends(), reason="the pool lives in the C++ kernels")
def test_pool_and_kept_memory_are_scoped_to_a_with_block_and_to_fit():
    """The switches change the whole process: scoped, each puts back what it found (a pool already on stays
    on), and fit(pool_memory=True, keep_freed_memory=True) holds them for its own duration only."""
    from beltrami import allocator

    with pooled_cpu_tensors():
        assert cpu_tensors_pooled()
        with pooled_cpu_tensors():
            assert cpu_tensors_pooled()
        assert cpu_tensors_pooled()  # the inner block found the pool on
    assert not cpu_tensors_pooled()
    with freed_memory_kept() as applied:
        assert applied == glibc_malloc_available() and allocator._kept == applied
    assert not allocator._kept
    seen = []
    beltrami.fit("cora", preset="fast", epochs=1, progress=False, pool_memory=True, keep_freed_memory=True,
                 on_epoch=lambda *_: seen.append((cpu_tensors_pooled(), allocator._kept)))
    assert seen == [(True, glibc_malloc_available())]
    assert not cpu_tensors_pooled() and not allocator._kept
    release_buffers()
