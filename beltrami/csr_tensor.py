"""PyTorch sparse CSR tensors without PyTorch's "beta" warning, and without a process-wide filter for it.

PyTorch warns once per process, at the first sparse CSR tensor, that its sparse CSR support is in beta;
beltrami's kernels that use it are tested here, so that one warning is filtered while a CSR tensor is made,
and no filter outlives the call.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator, Tuple

import torch
from torch import Tensor

_warned = False


@contextmanager
def beta_warning_off() -> Iterator[None]:
    """Around code that makes a sparse CSR tensor (``to_sparse_csr`` and the like)."""
    global _warned
    if _warned:  # PyTorch warns once: later constructions need no filter
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        yield
    _warned = True


def sparse_csr(crow: Tensor, col: Tensor, values: Tensor, shape: Tuple[int, int]) -> Tensor:
    """``torch.sparse_csr_tensor`` without invariant checks (the callers' index tensors are built valid)."""
    if _warned:  # every call after the first (the torch backend's SpMM makes one per product): no filter
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
    with beta_warning_off():
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
