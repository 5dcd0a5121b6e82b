"""Encoders of BLEND: a linear map of positional coordinates that may be sparse (PPR rows) or dense
(DeepWalk, hyperbolic), and the feature encoder."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sparse_dropout(u: Tensor, p: float, training: bool) -> Tensor:
    """Dropout on the stored values of a sparse CSR/COO tensor (implicit zeros stay zero)."""
    if not training or p == 0.0:
        return u
    if u.layout == torch.sparse_csr:
        values = F.dropout(u.values(), p, True)
        return torch.sparse_csr_tensor(u.crow_indices(), u.col_indices(), values, u.shape, check_invariants=False)
    u = u.coalesce()
    return torch.sparse_coo_tensor(u.indices(), F.dropout(u.values(), p, True), u.shape, is_coalesced=True)


class PositionalEncoder(nn.Module):
    """``phi(U) = dropout(U) W + b`` for ``U`` ``[N, P]`` dense or sparse (CSR/COO, e.g. top-k PPR rows),
    ``W`` ``[P, d']``.

    A sparse ``U`` is multiplied as is (O(nnz d')); its gradient only reaches ``W`` and ``b``. Dropout
    (``input_dropout``, default 0) acts on the stored entries, as the official code's dense dropout does on
    its PPR rows.
    """

    def __init__(self, in_dim: int, out_dim: int, input_dropout: float = 0.0) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.input_dropout = in_dim, out_dim, input_dropout
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, pos: Tensor) -> Tensor:
        if pos.layout != torch.strided:
            return torch.sparse.mm(sparse_dropout(pos, self.input_dropout, self.training), self.weight) + self.bias
        return F.dropout(pos, self.input_dropout, self.training) @ self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_dim}, {self.out_dim}"


class FeatureEncoder(nn.Module):
    """``psi(X) = dropout(X) W + b`` (input dropout, then a linear map)."""

    def __init__(self, in_dim: int, out_dim: int, input_dropout: float = 0.0) -> None:
        super().__init__()
        self.input_dropout = input_dropout
        self.lin = nn.Linear(in_dim, out_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.lin(F.dropout(x, self.input_dropout, self.training))
