"""Large CPU tensors without page faults: a pool of freed blocks, or glibc's malloc told to keep freed memory.

PyTorch's CPU allocator has no cache: every tensor is a ``malloc`` and every free a ``free``. glibc serves
blocks above its mmap threshold (32 MiB at most) with a fresh ``mmap`` and gives them back with ``munmap``,
so each new ``[E, H]`` tensor of an arxiv-sized graph (37 MB for 2.3M edges and 4 heads) is page-faulted
in from scratch, about ten times the cost of filling a reused one (measurements: ``docs/measurements/2026-12-cpu-memory.md``).

:func:`pool_cpu_tensors` (``--allocator pooled``; ``fit(pool_memory=True)`` for the duration of the fit, through
the context manager :func:`pooled_cpu_tensors`) makes the C++ kernels' buffer
pool (``beltrami/sparse/csrc/buffer_pool.cpp``) PyTorch's CPU allocator: a tensor of 1 MiB or more gets
the memory of a freed one of the same byte size, and the pool never holds more than its tensors had in
use at once (a new block first lets go of free ones of other sizes). The kernels of backend ``"cpp"`` use
that pool for their own outputs always; this option extends it to every tensor (the solvers' stage
combinations, dropout masks, the encoders): the fastest of the three options on big graphs, at about the same
peak memory. It needs the C++ kernels (a compiler and ninja) and is opt-in, since it replaces the allocator
of the whole process.

:func:`keep_freed_memory` (``--allocator keep-freed``; scoped: :func:`freed_memory_kept`) sets glibc's ``M_MMAP_MAX = 0`` (large blocks come
from the heap, so a freed block is reused by the next tensor of its size) and a high ``M_TRIM_THRESHOLD``
(the heap is not handed back to the system after every free). It needs no compiler, but the heap fragments:
slower than the pool at two to three times the peak memory. Transparent huge pages for malloc's mappings
(``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``) sped up a function evaluation but not the training epochs.
Preloading jemalloc or tcmalloc is the other well-known route.

:func:`use_huge_pages` (``--allocator huge-pages``) asks PyTorch's own CPU allocator for transparent huge
pages (its ``THP_MEM_ALLOC_ENABLE``: tensors of 2 MB and more are ``madvise``d). At ogbn-arxiv's size it
made BLEND epochs with dopri5 and the adjoint faster at the same peak memory, and epochs with rk4 and
direct backprop slower, so it is opt-in too. PyTorch reads that variable
once, at its first CPU allocation, so it only works when set before any tensor exists: in the shell, or
through :func:`relaunch_with_huge_pages` in a command-line tool. The pool's blocks follow the same
variable.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NoReturn

import torch

from .environment import read

ALLOCATORS = ("system", "pooled", "keep-freed", "huge-pages")
"""The choices of the ``--allocator`` options: PyTorch's and glibc's defaults, :func:`pool_cpu_tensors`,
:func:`keep_freed_memory` or :func:`use_huge_pages`."""

HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"
_THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# glibc's documented defaults, restored by keep_freed_memory(False)
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_KEEP_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int
_kept = False  # whether keep_freed_memory(True) is in effect (what freed_memory_kept restores)


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
    global _kept
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mmap_max, trim = (0, _KEEP_TRIM_THRESHOLD) if enable else (_DEFAULT_MMAP_MAX, _DEFAULT_TRIM_THRESHOLD)
    # mallopt returns 1 on success
    applied = bool(libc.mallopt(_M_MMAP_MAX, mmap_max)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim))
    _kept = enable and applied
    return applied


def pool_cpu_tensors(enable: bool = True) -> None:
    """Take every CPU tensor of 1 MiB and more from a pool of freed blocks (``enable=True``), or from the
    allocator that was there before again (tensors made meanwhile still return their memory to the pool).

    Process-wide, like :func:`keep_freed_memory`. :func:`beltrami.sparse.release_buffers` lets go of the
    pool's free blocks. ``torch.profiler``'s memory records no longer see the pooled tensors (PyTorch's own
    allocator reports them; the pool does not).

    Raises:
        ImportError: the C++ kernels, which hold the pool, cannot be built here (no compiler or ninja).
    """
    from .sparse.cpu_kernels import load

    try:
        kernels = load()
    except ImportError as err:
        raise ImportError(f"the pooled CPU allocator lives in beltrami's C++ kernels, which are not available: "
                          f"{err}") from err
    kernels.pool_cpu_tensors(enable)


@contextmanager
def pooled_cpu_tensors() -> Iterator[None]:
    """:func:`pool_cpu_tensors` for the duration of a ``with`` block; the allocator before it afterwards (a
    pool that was already on stays on)."""
    before = cpu_tensors_pooled()
    pool_cpu_tensors(True)
    try:
        yield
    finally:
        if not before:
            pool_cpu_tensors(False)


@contextmanager
def freed_memory_kept() -> Iterator[bool]:
    """:func:`keep_freed_memory` for the duration of a ``with`` block, glibc's defaults afterwards (unless it
    was already on); yields whether it applied (False where the C library is not glibc)."""
    before = _kept
    applied = keep_freed_memory(True)
    try:
        yield applied
    finally:
        if applied and not before:
            keep_freed_memory(False)


def cpu_tensors_pooled() -> bool:
    """Whether PyTorch's CPU tensors come from the pool of :func:`pool_cpu_tensors` in this process."""
    from .sparse.cpu_kernels import load

    return load.cache_info().currsize > 0 and load().cpu_tensors_pooled()


def huge_pages_active() -> bool:
    """Whether PyTorch's CPU allocator asks for transparent huge pages for big tensors in this process.

    Observed, not assumed: the mapping that holds a fresh 64 MiB tensor carries the kernel's ``hg`` flag
    (``madvise(MADV_HUGEPAGE)``) in ``/proc/self/smaps``. The size is above glibc's largest mmap threshold
    (32 MiB), so the probe gets a mapping of its own: a smaller one can land on heap memory that NumPy, which
    ``madvise``s its big arrays the same way, flagged earlier. (With :func:`keep_freed_memory` on, the probe
    comes from the heap and can still meet NumPy's flag.) The probe is never touched, so it costs no page.
    False where ``/proc/self/smaps`` does not exist (not Linux)."""
    probe = torch.empty(64 * 2**20, dtype=torch.uint8)
    address = probe.data_ptr()
    try:
        with open("/proc/self/smaps") as smaps:
            inside = False
            for line in smaps:
                head = line.split(maxsplit=1)[0]
                if "-" in head and not head.endswith(":"):  # a mapping's first line: "start-end perms ..."
                    start, end = (int(x, 16) for x in head.split("-"))
                    inside = start <= address < end
                elif inside and head == "VmFlags:":
                    return "hg" in line.split()[1:]
    except OSError:
        return False
    return False


def _thp_mode() -> str:
    try:
        text = _THP_MODE.read_text()
    except OSError:
        return "unavailable"
    return text[text.index("[") + 1:text.index("]")] if "[" in text else text.strip()


def huge_pages_supported() -> bool:
    """Whether this kernel hands out transparent huge pages to memory that asks for them (Linux, THP mode
    ``always`` or ``madvise``)."""
    return _thp_mode() in ("always", "madvise")


def use_huge_pages() -> None:
    """Have PyTorch's CPU allocator put tensors of 2 MB and more on transparent huge pages.

    Raises:
        RuntimeError: the setting cannot take effect: PyTorch has already allocated a CPU tensor in this
            process (it reads ``THP_MEM_ALLOC_ENABLE`` once, at its first allocation), or the kernel's
            transparent huge pages are off.
    """
    if not huge_pages_supported():
        raise RuntimeError(f"transparent huge pages are {_thp_mode()!r} in this kernel ({_THP_MODE}); huge pages "
                           "need 'always' or 'madvise'")
    os.environ[HUGE_PAGES_ENV] = "1"
    if not huge_pages_active():
        raise RuntimeError(f"huge pages could not be switched on: PyTorch reads {HUGE_PAGES_ENV} at its first CPU "
                           f"allocation, which this process has made already; set {HUGE_PAGES_ENV}=1 in the "
                           "environment before Python starts")


def ensure_huge_pages(relaunch: bool = False) -> None:
    """``--allocator huge-pages``: nothing to do when huge pages are on; otherwise start the command again
    with the variable set (``relaunch``, for a tool run from the command line) or switch them on here
    (:func:`use_huge_pages`, which says why when it cannot)."""
    if huge_pages_active():
        return
    if relaunch:
        relaunch_with_huge_pages()
    use_huge_pages()


def relaunch_with_huge_pages() -> NoReturn:
    """Start this command again with ``THP_MEM_ALLOC_ENABLE=1`` in its environment (for command-line tools,
    whose imports allocate before they parse their options). Refuses when the variable is already set, so
    that a setting that did not take effect cannot relaunch forever."""
    if read(HUGE_PAGES_ENV) == "1":
        raise RuntimeError(f"{HUGE_PAGES_ENV}=1 is set but PyTorch's CPU allocator does not use huge pages "
                           f"(transparent huge pages: {_thp_mode()!r})")
    # sys.orig_argv (Python 3.10+) keeps "-m module" and the interpreter's own options; on 3.9 the script
    # and its arguments, which is how beltrami-bench and tools/reproduce.py are started
    argv = getattr(sys, "orig_argv", None) or [sys.executable] + sys.argv
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, {**os.environ, HUGE_PAGES_ENV: "1"})

