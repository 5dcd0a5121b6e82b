"""Synthetic graphs of any size: a contextual stochastic block model (CSBM).

Nodes get balanced random classes; each undirected edge starts at a uniform random node and ends, with
probability ``homophily``, at a uniform node of the same class, otherwise at a uniform node of another
class. Features are a class mean (random direction of norm ``signal``) plus standard normal noise.
Everything is vectorised in torch with one seeded generator, O(N + E) time and memory: the arxiv-sized
instance (169,343 nodes, 1,166,243 edges, 128 features, 40 classes) takes a few seconds.
"""
from __future__ import annotations

from typing import Optional

import torch

from .raw import RawData

ARXIV_SIZE = dict(num_nodes=169_343, num_edges=1_166_243, num_classes=40, num_features=128, homophily=0.65)
"""ogbn-arxiv's size (OGB's node and edge counts, 128 features, 40 classes; edge homophily about 0.65)."""


def csbm(num_nodes: int = 2000, avg_degree: float = 8.0, num_classes: int = 4, homophily: float = 0.8,
         num_features: int = 32, signal: float = 1.0, seed: int = 0, num_edges: Optional[int] = None,
         name: str = "synthetic") -> RawData:
    """Sample a CSBM graph.

    Args:
        num_nodes: N >= 1.
        avg_degree: mean degree of the undirected graph; sets ``num_edges = round(N * avg_degree / 2)``
            unless ``num_edges`` is given.
        num_classes: C in [1, N].
        homophily: probability in [0, 1] that an edge joins two nodes of the same class.
        num_features: feature dimension F >= 1.
        signal: norm of the class means (0: features carry no label information).
        seed: the same seed gives the same graph, features and labels.
        num_edges: number of undirected edges to sample (before removing duplicates and self-loops).
    """
    if num_nodes < 1:
        raise ValueError(f"num_nodes must be >= 1, got {num_nodes}")
    if not 1 <= num_classes <= num_nodes:
        raise ValueError(f"num_classes must lie in [1, num_nodes={num_nodes}], got {num_classes}")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily must lie in [0, 1], got {homophily}")
    if num_features < 1:
        raise ValueError(f"num_features must be >= 1, got {num_features}")
    if avg_degree < 0 or signal < 0:
        raise ValueError(f"avg_degree and signal must be >= 0, got {avg_degree} and {signal}")
    m = int(round(num_nodes * avg_degree / 2)) if num_edges is None else int(num_edges)
    if m < 0:
        raise ValueError(f"num_edges must be >= 0, got {m}")
    g = torch.Generator().manual_seed(seed)
    y = torch.randperm(num_nodes, generator=g) % num_classes  # balanced, every class non-empty
    by_class = torch.argsort(y, stable=True)
    count = torch.bincount(y, minlength=num_classes)
    start = torch.cumsum(count, 0) - count

    src = torch.randint(num_nodes, (m,), generator=g)
    same = torch.rand(m, generator=g) < homophily
    shift = torch.randint(1, max(num_classes, 2), (m,), generator=g) if num_classes > 1 else torch.zeros(m, dtype=torch.long)
    dst_class = torch.where(same, y[src], (y[src] + shift) % num_classes)
    offset = (torch.rand(m, generator=g, dtype=torch.float64) * count[dst_class]).long()
    dst = by_class[start[dst_class] + torch.minimum(offset, count[dst_class] - 1)]

    means = torch.randn(num_classes, num_features, generator=g)
    means = signal * means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x = means[y] + torch.randn(num_nodes, num_features, generator=g)
    return RawData(name=name, edge_index=torch.stack([src, dst]), num_nodes=num_nodes, x=x, y=y,
                   num_classes=num_classes)
