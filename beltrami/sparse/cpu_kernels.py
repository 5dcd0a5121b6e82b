"""The C++ CPU kernels behind ``backend="cpp"``, compiled on first use by torch's JIT extension builder.

The first call builds the sources of ``csrc/`` (``csr_spmm_cpu.cpp``: the CSR product; ``attention_cpu.cpp``:
the fused attention of the time-dependent Beltrami flow; ``projection_cpu.cpp``: the projection that feeds
it; ``buffer_pool.cpp``: recycled memory for their outputs; ``bindings.cpp``; about a minute with two
cores) into torch's extension cache (``$TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``);
later processes load the cached build in well under a second. Builds are serialised by a lock that the
system releases when its holder dies (:mod:`beltrami.sparse.build_lock`), so a build killed part-way cannot
leave later processes waiting forever. The build targets the instruction set
PyTorch itself dispatches to on this CPU (x86-64-v4 where it uses AVX-512, v3 for AVX2, the baseline
otherwise), and that level is part of the module's name: a cache shared with a machine of another level
gets its own build, never an illegal instruction.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Tuple

import torch

from ..environment import read
from .build_lock import build_lock

CSRC = Path(__file__).with_name("csrc")
SOURCES = [CSRC / name for name in ("csr_spmm_cpu.cpp", "attention_cpu.cpp", "projection_cpu.cpp", "buffer_pool.cpp",
                                    "bindings.cpp")]
HEADERS = [CSRC / "kernels.h"]
_MARCH = {"AVX512": "-march=x86-64-v4", "AVX2": "-march=x86-64-v3"}


def compiler_available() -> bool:
    """Whether the kernel sources, a C++ compiler and ninja (which torch's builder drives) are here; the
    backend is offered only then."""
    from torch.utils.cpp_extension import is_ninja_available

    return (all(src.is_file() for src in SOURCES + HEADERS) and shutil.which(read("CXX", "c++")) is not None
            and is_ninja_available())


def _headers_flag() -> str:
    """A macro naming the headers' digest. torch's builder rebuilds when a source file or a build flag
    changes, but does not read included headers: a change to ``kernels.h`` alone would load the stale build."""
    digest = hashlib.sha256(b"".join(h.read_bytes() for h in HEADERS)).hexdigest()[:16]
    return f"-DBELTRAMI_HEADERS_SHA256={digest}"


BUILD_WAIT_SECONDS = 600.0
"""How long a process waits for another one's build of the kernels before it gives up with a message."""


@functools.lru_cache(maxsize=None)
def load() -> ModuleType:
    """The compiled kernels (built on the first call of a process if the cache has none).

    Raises:
        ImportError: the build failed (the compiler's message included).
        TimeoutError: another process held the build lock for :data:`BUILD_WAIT_SECONDS` (named, with how
            to clear it)."""
    from torch.utils.cpp_extension import load as load_extension

    level = torch.backends.cpu.get_cpu_capability()
    flags = ["-O3", "-fopenmp"] + ([_MARCH[level]] if level in _MARCH else []) + [_headers_flag()]
    name = f"beltrami_cpu_kernels_{level.lower()}"
    folder = build_folder(name)
    print(f"beltrami: loading the C++ CPU kernels ({name}; the first build takes about a minute)",
          file=sys.stderr)
    with build_lock(folder, BUILD_WAIT_SECONDS):
        try:
            return load_extension(name, [str(src) for src in SOURCES], extra_cflags=flags,
                                  extra_include_paths=[str(CSRC)], extra_ldflags=["-fopenmp"],
                                  build_directory=str(folder))
        except Exception as err:  # the compiler's own message is in err
            raise ImportError(f"the C++ CPU kernels (sparse backend 'cpp') did not build: {err}\n"
                              "Use backend='torch' (the default).") from err


def build_folder(name: str) -> Path:
    """Where ``name`` is built: torch's extension cache (``$TORCH_EXTENSIONS_DIR``, default
    ``~/.cache/torch_extensions``), in a folder per Python and torch version (their ABIs differ)."""
    root = read("TORCH_EXTENSIONS_DIR") or os.path.join(Path.home(), ".cache", "torch_extensions")
    tag = f"py{sys.version_info.major}{sys.version_info.minor}_torch{torch.__version__.replace('+', '_')}"
    folder = Path(root) / tag / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def release_buffers() -> int:
    """Let go of the memory the C++ kernels keep for reuse, as ``torch.cuda.empty_cache`` does for CUDA.

    The kernels take their outputs and scratch tensors of 1 MiB and more from a pool: a buffer whose
    tensor is gone (no tensor, view or saved autograd state refers to it) is handed to the next tensor of
    its size, instead of a fresh ``malloc`` whose pages fault in afresh (see :mod:`beltrami.allocator`). The
    pool never holds more than the most bytes its tensors had in use at once (every CPU tensor's, after
    :func:`beltrami.allocator.pool_cpu_tensors`); :func:`beltrami.fit` calls this at the end of each run.
    Returns the bytes let go (0 where the kernels were never loaded in this process)."""
    if load.cache_info().currsize == 0:
        return 0
    return load().release_buffers()


def buffer_pool_bytes() -> Tuple[int, int]:
    """``(held, in_use)``: bytes the kernels' buffer pool holds, and how many of them live tensors use."""
    if load.cache_info().currsize == 0:
        return 0, 0
    return tuple(load().buffer_pool_bytes())
