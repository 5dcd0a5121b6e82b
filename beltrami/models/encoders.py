"""Encoders of BLEND: a linear map of positional coordinates that may be sparse (PPR rows) or dense
(DeepWalk, hyperbolic), and the feature encoder."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from ..validation import check_node_input
from .input_projection import ProjectionCache, project


def with_positions(x: Tensor, pos: Optional[Tensor], num_nodes: int, in_channels: int, pos_channels: int) -> Tensor:
    """A baseline's input: ``x`` ``[N, F]``, or ``[x, pos]`` ``[N, F + P]`` when it was built with
    ``pos_channels = P > 0`` (``pos`` dense or sparse, e.g. PPR rows; made dense: the baselines' first layer
    is a dense linear map)."""
    check_node_input(x, num_nodes, in_channels, "x")
    if pos_channels == 0:
        if pos is not None:
            raise ValueError("pos was given to a model built with pos_channels=0: build it with "
                             f"pos_channels={pos.shape[-1]} to use the coordinates, or pass pos=None")
        return x
    if pos is None:
        raise ValueError(f"this model was built with pos_channels={pos_channels}: pass pos")
    check_node_input(pos, num_nodes, pos_channels, "pos")
    dense = pos if pos.layout == torch.strided else pos.to_dense()
    return torch.cat([x, dense.to(x.dtype)], dim=1)


class PositionalEncoder(nn.Module):
    """``phi(U) = dropout(U) W + b`` for ``U`` ``[N, P]`` dense or sparse (CSR/COO, e.g. top-k PPR rows),
    ``W`` ``[P, d']``.

    A sparse ``U`` is multiplied as is (O(nnz d')); its gradient only reaches ``W`` and ``b``. Dropout
    (``input_dropout``, default 0) acts on every entry, as the official code's dense dropout does on its
    PPR rows (on a sparse ``U`` the stored ones: the others are zero). See
    :mod:`beltrami.models.input_projection`.
    """

    def __init__(self, in_dim: int, out_dim: int, input_dropout: float = 0.0) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.input_dropout = in_dim, out_dim, input_dropout
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        self._cache = ProjectionCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, pos: Tensor) -> Tensor:
        return project(pos, self.weight, self.bias, self.input_dropout, self.training, self._cache)

    def extra_repr(self) -> str:
        return f"{self.in_dim}, {self.out_dim}"


class FeatureEncoder(nn.Module):
    """``psi(X) = dropout(X) W + b`` (input dropout, then a linear map ``lin``). ``X`` ``[N, F]``, dense or
    sparse; a dense ``X`` of few nonzeros (bag-of-words) is multiplied in sparse form, converted once while
    the same tensor is passed (see :mod:`beltrami.models.input_projection`)."""

    def __init__(self, in_dim: int, out_dim: int, input_dropout: float = 0.0) -> None:
        super().__init__()
        self.input_dropout = input_dropout
        self.lin = nn.Linear(in_dim, out_dim)
        self._cache = ProjectionCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return project(x, self.lin.weight.t(), self.lin.bias, self.input_dropout, self.training, self._cache)
