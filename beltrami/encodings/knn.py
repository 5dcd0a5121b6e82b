"""k-nearest-neighbour rewiring by blocked exact top-k, O(n * block) memory (never n x n).

The paper's BLEND-kNN rewires the graph by kNN in the positional coordinates (``E' = E(U)``); here the
coordinates can be positions, features or both concatenated, with cosine or Euclidean distance.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..graph import Graph
from ..validation import check_choice, check_finite
from .progress import progress

METRICS = ("cosine", "euclidean")


def knn_graph(coords: Tensor, k: int, metric: str = "cosine", union_with: Optional[Graph] = None,
              symmetric: bool = True, block: int = 4096, show_progress: bool = False) -> Graph:
    """The graph linking every node to its ``k`` nearest other nodes.

    Args:
        coords: ``[N, d]`` coordinates (finite).
        k: neighbours per node, ``1 <= k <= N - 1``.
        metric: ``cosine`` (default) or ``euclidean``.
        union_with: also keep this graph's edges.
        symmetric: add the reverse of every edge (the paper's graphs are undirected).
        block: query rows per block; memory O(block * N).

    Returns:
        A coalesced :class:`Graph` without self-loops.
    """
    check_choice(metric, METRICS, "kNN metric")
    if coords.dim() != 2:
        raise ValueError(f"coords must have shape [N, d], got {tuple(coords.shape)}")
    check_finite(coords, "coords")
    n = coords.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must lie in [1, N-1 = {n - 1}], got {k}")
    x = coords.detach().float()
    if metric == "cosine":
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sq = (x * x).sum(1)
    cols = []
    for start in progress(range(0, n, block), "kNN", show_progress):
        q = x[start:start + block]
        if metric == "cosine":
            score = q @ x.T  # larger is closer
        else:
            score = -(sq[start:start + block, None] - 2 * q @ x.T + sq[None, :])
        idx = torch.arange(start, start + q.shape[0], device=x.device)
        score[torch.arange(q.shape[0], device=x.device), idx] = float("-inf")  # not itself
        cols.append(score.topk(k, dim=1).indices)
    col = torch.cat(cols).reshape(-1)
    row = torch.arange(n, device=x.device).repeat_interleave(k)
    ei = torch.stack([row, col])
    if union_with is not None:
        ei = torch.cat([ei, union_with.edge_index.to(ei.device)], dim=1)
    g = Graph.from_edge_index(ei, n)
    return (g.symmetrize() if symmetric else g.coalesce()).remove_self_loops()
