"""Encoders of BLEND: a linear map of positional coordinates that may be sparse (PPR rows) or dense
(DeepWalk, hyperbolic), and the feature encoder."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PositionalEncoder(nn.Module):
    """``phi(U) = U W + b`` for ``U`` ``[N, P]`` dense or sparse (CSR/COO, e.g. top-k PPR rows), ``W`` ``[P, d']``.

    A sparse ``U`` is multiplied as is (O(nnz d')); its gradient only reaches ``W`` and ``b``.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, pos: Tensor) -> Tensor:
        if pos.layout != torch.strided:
            return torch.sparse.mm(pos, self.weight) + self.bias
        return pos @ self.weight + self.bias

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
