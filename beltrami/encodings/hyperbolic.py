"""Poincare-ball embeddings of a graph (Nickel & Kiela 2017) as positional coordinates.

Each node gets a point in the open unit ball; for every edge ``(u, v)`` the loss is the softmax cross-entropy
of ``-d(u, v)`` against ``-d(u, n)`` for sampled non-neighbours ``n``, with the Poincare distance
``d(u, v) = arcosh(1 + 2 |u - v|^2 / ((1 - |u|^2)(1 - |v|^2)))``. Optimisation is Riemannian SGD: the
Euclidean gradient is rescaled by the inverse metric ``(1 - |x|^2)^2 / 4`` and points are projected back
inside the ball; the first ``burn_in`` epochs use a tenth of the learning rate, as in the paper.
Vectorised over edges in batches; seeded; O(N dim + batch) memory.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..graph import Graph
from .progress import progress

EPS = 1e-5


def poincare_distance(u: Tensor, v: Tensor) -> Tensor:
    sq = ((u - v) ** 2).sum(-1)
    den = (1 - (u * u).sum(-1)).clamp_min(EPS) * (1 - (v * v).sum(-1)).clamp_min(EPS)
    return torch.acosh((1 + 2 * sq / den).clamp_min(1 + 1e-7))


def _project(x: Tensor) -> Tensor:
    norm = x.norm(dim=-1, keepdim=True)
    return torch.where(norm >= 1 - EPS, x / norm * (1 - EPS), x)


def poincare_embeddings(graph: Graph, dim: int = 2, epochs: int = 200, negatives: int = 10, lr: float = 0.3,
                        batch_size: int = 1024, burn_in: int = 10, seed: int = 0,
                        show_progress: bool = True) -> Tensor:
    """Points in the Poincare ball ``[N, dim]`` (norm < 1) embedding ``graph``'s edges."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if epochs < 1 or negatives < 1:
        raise ValueError("epochs and negatives must be >= 1")
    gen = torch.Generator().manual_seed(seed)
    g = graph.coalesce().remove_self_loops().to("cpu")
    n = g.num_nodes
    edges = g.edge_index.T
    theta = (torch.rand(n, dim, generator=gen) - 0.5) * 2e-3
    edge_keys = g.row * n + g.col  # sorted: CSR order
    for epoch in progress(range(epochs), "Poincare embedding", show_progress):
        rate = lr / 10 if epoch < burn_in else lr
        order = torch.randperm(edges.shape[0], generator=gen)
        for start in range(0, edges.shape[0], batch_size):
            batch = edges[order[start:start + batch_size]]
            neg = torch.randint(n, (batch.shape[0], negatives), generator=gen)
            # resample (once) negatives that are neighbours or the node itself
            u_ids = batch[:, :1].expand_as(neg)
            bad = torch.isin(u_ids * n + neg, edge_keys) | (neg == u_ids)
            neg = torch.where(bad, torch.randint(n, neg.shape, generator=gen), neg)
            th = theta.clone().requires_grad_()
            u = th[batch[:, 0]]
            cand = torch.cat([batch[:, 1:2], neg], dim=1)
            d = poincare_distance(u.unsqueeze(1), th[cand])
            loss = torch.nn.functional.cross_entropy(-d, torch.zeros(batch.shape[0], dtype=torch.long))
            (grad,) = torch.autograd.grad(loss, th)
            scale = ((1 - (theta * theta).sum(-1, keepdim=True)) ** 2) / 4
            theta = _project(theta - rate * batch.shape[0] * scale * grad)
    return theta


def reconstruction_map(graph: Graph, emb: Tensor) -> float:
    """Mean average precision of ranking each node's neighbours by Poincare distance among all nodes
    (Nickel & Kiela's reconstruction metric; 1.0 = every neighbour closer than every non-neighbour)."""
    g = graph.coalesce().remove_self_loops()
    d = poincare_distance(emb.unsqueeze(1), emb.unsqueeze(0))
    aps = []
    for u in range(g.num_nodes):
        nbrs = g.col[g.crow[u]:g.crow[u + 1]]
        if nbrs.numel() == 0:
            continue
        du = d[u].clone()
        du[u] = float("inf")
        ranks = (du.unsqueeze(0) < du[nbrs].unsqueeze(1)).sum(1) + 1  # rank of each neighbour
        ranks, _ = ranks.sort()
        aps.append(float((torch.arange(1, nbrs.numel() + 1) / ranks.float()).mean()))
    return sum(aps) / len(aps)
