"""Every environment variable the package reads, read here (the docs' list: ``docs/architecture.md``).

The benchmarks and tests read a few of their own (``BELTRAMI_BENCH_DEVICE``, ``BELTRAMI_BENCH_ALLOCATOR``,
``BELTRAMI_ASV_SMOKE``, ``BELTRAMI_ASV_FULL``); they are listed in the same place.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

VARIABLES: Dict[str, str] = {
    "BELTRAMI_DATA": "data root (after an explicit root=; default $XDG_CACHE_HOME/beltrami/data)",
    "BELTRAMI_CACHE": "cached processed tensors and encodings (default $XDG_CACHE_HOME/beltrami)",
    "XDG_CACHE_HOME": "the base of the two defaults above (default ~/.cache)",
    "BELTRAMI_SPARSE_BACKEND": "the sparse kernels of a model or call that names none: torch (default), "
                               "torch_sparse or cpp",
    "THP_MEM_ALLOC_ENABLE": "PyTorch's: transparent huge pages for big CPU tensors, read at its first "
                            "allocation; set by --allocator huge-pages (which restarts the command)",
    "TORCH_EXTENSIONS_DIR": "PyTorch's: where the C++ kernels are built (default ~/.cache/torch_extensions)",
    "CXX": "the C++ compiler of the C++ kernels (default c++)",
}


def read(name: str, default: Optional[str] = None) -> Optional[str]:
    """The value of ``name`` (one of :data:`VARIABLES`), or ``default`` where it is unset or empty."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not among the environment variables beltrami reads: {', '.join(VARIABLES)}")
    return os.environ.get(name) or default
