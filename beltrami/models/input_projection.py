"""``dropout(U) @ W + b`` for the fixed inputs of a model: node features and positional coordinates.

The inputs never change during training, but each forward drops a fresh random subset of their entries.
Two things make that cheap here:

- **Sparse inputs stay sparse.** Bag-of-words features are about 1% nonzero and top-k PPR rows are sparse:
  dropout of a zero is zero, so only the stored entries draw a mask, and the product and its gradient
  ``W.grad = dropout(U)^T G`` run over them through a transpose computed once (:class:`SparseRows`). A
  dense input of few nonzeros is turned into this form once and cached for as long as the tensor is
  unchanged (same object, same version), so a training loop that passes the same ``x`` every epoch pays
  the conversion once.
- **Masks from random bits.** On the CPU, PyTorch draws a Bernoulli mask one element at a time through
  its Mersenne twister; here 32 random bits per element come from numpy's SFC64 generator, seeded from
  PyTorch's generator (so ``torch.manual_seed`` fixes them), and an element is kept when its bits, read
  as an integer, clear a threshold: keep probability ``1 - p`` to within ``2^-32`` (PyTorch's own
  float mask resolves ``2^-24``). A dense input is masked a block of rows at a time. On CUDA, PyTorch's
  dropout is used.

Shapes: ``U`` ``[N, P]`` (dense, sparse CSR/COO, or :class:`SparseRows`), ``W`` ``[P, D]``, ``b`` ``[D]``
-> ``[N, D]``.
"""
from __future__ import annotations

import weakref
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..csr_tensor import beta_warning_off
from ..graph import CSR, _crow_from_sorted_rows
from ..sparse.ops import TORCH

SPARSE_BELOW = 0.1
"""A dense input with fewer than this fraction of nonzeros is projected in sparse form."""
DENSE_ABOVE = 0.5
"""A sparse input with more than this fraction stored is projected in dense form (exact PPR rows are full)."""


BLOCK = 1 << 20
"""Elements per block of a dense dropout: masks and random bits exist one block at a time."""


def _bits(rng: np.random.Generator, n: int) -> Tensor:
    """``n`` uniformly random int32 (32 random bits each)."""
    return torch.from_numpy(rng.bit_generator.random_raw((n + 1) // 2).view(np.int32)[:n])


def _threshold(p: float) -> int:
    # int32 bits are uniform on [-2^31, 2^31): P(bits >= -2^31 + round(p 2^32)) = 1 - p (to 2^-32)
    return -(2 ** 31) + int(round(p * 2 ** 32))


def _generator() -> np.random.Generator:
    """numpy's SFC64, seeded from PyTorch's default generator (so ``torch.manual_seed`` fixes its stream)."""
    return np.random.Generator(np.random.SFC64(int(torch.randint(0, 2 ** 62, (1,)))))


def keep_mask(shape: Tuple[int, ...], p: float, device: torch.device) -> Tensor:
    """A boolean mask of ``shape`` whose entries are True with probability ``1 - p`` (see the module doc)."""
    if device.type != "cpu":
        return torch.rand(shape, device=device) >= p
    n = int(np.prod(shape, dtype=np.int64))
    return (_bits(_generator(), n) >= _threshold(p)).view(shape)


def dropout(u: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(u, p, training)`` with the mask of :func:`keep_mask` (PyTorch's own on CUDA). On the CPU
    the mask is drawn and applied a block of rows at a time into the one output tensor, so no mask or
    random bits of ``u``'s whole size ever exist (exact PPR rows: 6M entries on Cora)."""
    if not training or p == 0.0:
        return u
    if u.is_cuda:
        return F.dropout(u, p, True)
    flat = u.reshape(u.shape[0], -1) if u.dim() > 1 else u.reshape(-1, 1)
    out = torch.empty_like(flat)
    rng, threshold, scale = _generator(), _threshold(p), 1.0 / (1.0 - p)
    rows = max(1, BLOCK // max(flat.shape[1], 1))
    for r in range(0, flat.shape[0], rows):
        block = flat[r:r + rows]
        keep = (_bits(rng, block.numel()) >= threshold).view(block.shape).to(u.dtype).mul_(scale)
        torch.mul(block, keep, out=out[r:r + rows])
    return out.view(u.shape)


class _DropoutProjection(torch.autograd.Function):
    """``dropout(u) @ weight`` for a fixed dense ``u`` on the CPU, a block of rows at a time: what backward
    keeps is the boolean mask (a quarter of the dropped matrix's bytes), and no intermediate of ``u``'s
    size exists."""

    @staticmethod
    def forward(ctx, u: Tensor, weight: Tensor, p: float) -> Tensor:
        rng, threshold, scale = _generator(), _threshold(p), 1.0 / (1.0 - p)
        keep = torch.empty(u.shape, dtype=torch.bool)
        out = u.new_empty((u.shape[0], weight.shape[1]))
        rows = max(1, BLOCK // max(u.shape[1], 1))
        for r in range(0, u.shape[0], rows):
            block = u[r:r + rows]
            torch.ge(_bits(rng, block.numel()).view(block.shape), threshold, out=keep[r:r + rows])
            torch.mm(block * keep[r:r + rows].to(u.dtype), weight, out=out[r:r + rows])
        ctx.save_for_backward(u, keep)
        ctx.scale, ctx.rows = scale, rows
        return out.mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        u, keep = ctx.saved_tensors
        grad_weight = grad.new_zeros((u.shape[1], grad.shape[1]))
        for r in range(0, u.shape[0], ctx.rows):
            dropped = u[r:r + ctx.rows] * keep[r:r + ctx.rows].to(u.dtype)
            grad_weight.addmm_(dropped.t(), grad[r:r + ctx.rows])
        return None, grad_weight.mul_(ctx.scale), None


class SparseRows:
    """A fixed sparse matrix ``[N, P]`` in CSR form with its transpose (:class:`~beltrami.graph.CSR` index
    tensors; the transpose's values are ``values[csr.t_perm]``)."""

    def __init__(self, crow: Tensor, col: Tensor, values: Tensor, shape: Tuple[int, int]) -> None:
        self.values, self.shape = values, (int(shape[0]), int(shape[1]))
        row = torch.repeat_interleave(torch.arange(self.shape[0], device=crow.device), crow[1:] - crow[:-1])
        t_perm = torch.argsort(col * max(self.shape[0], 1) + row, stable=True)
        t_perm_inv = torch.empty_like(t_perm)
        t_perm_inv[t_perm] = torch.arange(t_perm.numel(), device=crow.device)
        self.csr = CSR(crow, col, row, _crow_from_sorted_rows(col[t_perm], self.shape[1]), row[t_perm], t_perm,
                       t_perm_inv)

    @classmethod
    def from_tensor(cls, u: Tensor) -> "SparseRows":
        """From a dense tensor, or a sparse COO/CSR one."""
        if u.layout != torch.sparse_csr:
            with beta_warning_off():
                u = (u.coalesce() if u.layout == torch.sparse_coo else u).to_sparse_csr()
        return cls(u.crow_indices().long(), u.col_indices().long(), u.values(), tuple(u.shape))

    @property
    def nnz(self) -> int:
        return int(self.values.numel())

    def project(self, weight: Tensor, p: float, training: bool) -> Tensor:
        """``dropout(U) @ weight`` over the stored entries; differentiable in ``weight`` ``[P, D]``."""
        values = dropout(self.values, p, training).to(weight.dtype)
        c = self.csr
        return torch.ops.beltrami.csr_spmm(c.crow, c.col, values, weight.contiguous(), c.t_crow, c.t_col, c.t_perm,
                                           c.t_perm_inv, TORCH)


class ProjectionCache:
    """Remembers the sparse form of the last dense input seen, while that tensor is alive and unchanged."""

    def __init__(self) -> None:
        self._ref: Optional[weakref.ref] = None
        self._key: Tuple = ()
        self._form: Optional[Union[SparseRows, Tensor]] = None

    # a copied or pickled model starts with an empty cache (a weak reference can be neither)
    def __deepcopy__(self, memo) -> "ProjectionCache":
        return ProjectionCache()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def form(self, u: Tensor) -> Union[SparseRows, Tensor]:
        """``u`` itself (dense and dense enough) or its :class:`SparseRows`."""
        key = (u._version, tuple(u.shape), u.dtype, u.device, u.layout)
        if self._ref is not None and self._ref() is u and self._key == key:
            return self._form
        form: Union[SparseRows, Tensor] = u
        if u.layout != torch.strided:
            stored = u._nnz() if u.layout == torch.sparse_coo else u.values().numel()
            form = u.to_dense() if stored > DENSE_ABOVE * u.shape[0] * u.shape[1] else SparseRows.from_tensor(u)
        elif u.dim() == 2 and u.numel() > 0 and float(torch.count_nonzero(u)) < SPARSE_BELOW * u.numel():
            form = SparseRows.from_tensor(u)
        self._ref, self._key, self._form = weakref.ref(u), key, form
        return form


def project(u: Union[Tensor, SparseRows], weight: Tensor, bias: Optional[Tensor], p: float, training: bool,
            cache: Optional[ProjectionCache] = None) -> Tensor:
    """``dropout(u, p) @ weight + bias`` (``weight`` ``[P, D]``), sparse where ``u`` is sparse or nearly so."""
    form = u if isinstance(u, SparseRows) or cache is None else cache.form(u)
    if isinstance(form, SparseRows):
        out = form.project(weight, p, training)
    elif form.layout != torch.strided:
        out = SparseRows.from_tensor(form).project(weight, p, training)
    else:
        fixed = training and p > 0.0 and not form.is_cuda and not form.requires_grad and form.dim() == 2
        out = _DropoutProjection.apply(form, weight, p) if fixed else dropout(form, p, training) @ weight
    return out if bias is None else out + bias
