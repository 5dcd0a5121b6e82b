"""Normalisation of edge scores over each node's incident edges (CSR rows).

``edge_softmax``: ``a[e] = exp(s[e] - m_i) / sum_{e' in row i} exp(s[e'] - m_i)`` with ``m_i`` the row maximum
(numerically stable), computed by the fused custom op ``beltrami::segment_softmax`` of :mod:`.ops` (its
backward and double backward are ops too). ``edge_squareplus``: the
official BLEND code's alternative, ``sp(x) = (x + sqrt(x^2 + 4)) / 2`` of the scores minus their global
maximum, divided by the row sum. Both: ``[E]`` or ``[E, H]`` scores, rows of the graph's CSR order, O(E)
memory, empty rows allowed (they have no entries to normalise).
"""
from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

from ..graph import CSR, Graph
from .ops import gather_rows, segment_sum


def _crow_row(graph: Union[Graph, CSR]):
    csr = graph.csr() if isinstance(graph, Graph) else graph
    return csr.crow, csr.row


def segment_softmax(scores: Tensor, crow: Tensor, row: Tensor) -> Tensor:
    """Softmax of ``scores`` ``[E]``/``[E, H]`` within each CSR row (TorchScript-able tensor form)."""
    return torch.ops.beltrami.segment_softmax(scores, row, crow.shape[0] - 1, crow)


def column_softmax(scores: Tensor, col: Tensor, n: int) -> Tensor:
    """Softmax of ``scores`` (CSR order) within each column of an ``n``-column graph; results stay in CSR
    order. (Columns are unsorted segments: scattered reductions, no reordering of the scores.)"""
    return torch.ops.beltrami.segment_softmax(scores, col, n, None)


def column_squareplus(scores: Tensor, col: Tensor, n: int) -> Tensor:
    """Squareplus normalisation within each column (global maximum subtracted first)."""
    sp = _squareplus(scores)
    return sp / gather_rows(segment_sum(sp, col, n), col)


def segment_squareplus(scores: Tensor, crow: Tensor, row: Tensor) -> Tensor:
    """Squareplus normalisation within each CSR row (global maximum subtracted first, as BLEND's code)."""
    sp = _squareplus(scores)
    return sp / gather_rows(segment_sum(sp, row, crow.shape[0] - 1), row)


def _squareplus(scores: Tensor) -> Tensor:
    x = scores - scores.max()  # not detached: squareplus is not shift-invariant
    return 0.5 * (x + torch.sqrt(x * x + 4.0))


def edge_softmax(graph: Union[Graph, CSR], scores: Tensor) -> Tensor:
    """Softmax of edge ``scores`` (``[E]`` or ``[E, H]``, CSR order) over each row; rows sum to 1."""
    _check(graph, scores)
    return segment_softmax(scores, *_crow_row(graph))


def edge_squareplus(graph: Union[Graph, CSR], scores: Tensor) -> Tensor:
    """Squareplus-normalised edge ``scores`` (``[E]`` or ``[E, H]``); rows sum to 1."""
    _check(graph, scores)
    return segment_squareplus(scores, *_crow_row(graph))


def _check(graph: Union[Graph, CSR], scores: Tensor) -> None:
    crow, _ = _crow_row(graph)
    e = int(crow[-1])
    if scores.dim() not in (1, 2) or scores.shape[0] != e:
        raise ValueError(f"scores must have shape [E] or [E, H] with E = {e} edges, got {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise TypeError(f"scores must be floating point, got {scores.dtype}")
