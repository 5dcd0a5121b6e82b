"""DeepWalk (Perozzi et al. 2014): uniform random walks on the CSR graph, vectorised over all start nodes,
and a skip-gram model with negative sampling trained in torch by word2vec's SGD (linearly decaying rate,
updates written into the touched rows only).

Walks: ``walks_per_node`` walks of ``walk_length`` from every node, one vectorised step for all walks at a
time (a node without neighbours stays put). Pairs: every (centre, context) within ``window``, generated
for a chunk of (shuffled) walks at a time and shuffled within it, so that memory is O(N walks_per_node
walk_length + chunk) instead of the 2 window times larger set of all pairs (300M pairs, 4.8 GB, for
ogbn-arxiv's size). Loss: ``-log s(u_c . v_o) - sum_neg log s(-u_c . v_n)`` with negatives drawn from the
unigram^0.75 distribution of the walks. Seeded. SparseAdam, our first optimiser, spent 60% of each step
coalescing the duplicate row indices of its sparse gradients; plain row-wise SGD is several times faster.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..graph import Graph
from .progress import progress


def random_walks(graph: Graph, walk_length: int, walks_per_node: int, generator: torch.Generator) -> Tensor:
    """``[N * walks_per_node, walk_length]`` node ids of uniform random walks (CSR sampling)."""
    crow, col = graph.crow, graph.col
    deg = graph.degree()
    cur = torch.arange(graph.num_nodes).repeat(walks_per_node)
    walks = [cur]
    for _ in range(walk_length - 1):
        d = deg[cur]
        offset = (torch.rand(cur.shape[0], generator=generator) * d).long()
        nxt = col[(crow[cur] + offset).clamp_max(max(col.numel() - 1, 0))] if col.numel() else cur
        cur = torch.where(d > 0, nxt, cur)
        walks.append(cur)
    return torch.stack(walks, dim=1)


def _pairs(walks: Tensor, window: int) -> Tensor:
    pairs = []
    for off in range(1, window + 1):
        pairs.append(torch.stack([walks[:, :-off].reshape(-1), walks[:, off:].reshape(-1)], 1))
        pairs.append(torch.stack([walks[:, off:].reshape(-1), walks[:, :-off].reshape(-1)], 1))
    return torch.cat(pairs)


def deepwalk_embeddings(graph: Graph, dim: int = 64, walk_length: int = 20, walks_per_node: int = 10,
                        window: int = 5, negatives: int = 5, epochs: int = 1, batch_size: int = 8192,
                        lr: float = 0.025, seed: int = 0, show_progress: bool = True,
                        cache: bool = True) -> Tensor:
    """DeepWalk node embeddings ``[N, dim]`` (float32), cached on disk by graph and parameters."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if walk_length < 2 or walks_per_node < 1 or window < 1 or negatives < 1:
        raise ValueError("need walk_length >= 2, walks_per_node >= 1, window >= 1, negatives >= 1")
    from ..cache import cache_key, cached

    # A batch's updates to one row are summed (index_add_), so a node met k times in a batch takes a step
    # k times word2vec's: on a 60-node graph 8192 pairs gave rows of norm 2e5. At most 4 pairs per node keep
    # the summed step near the sequential one (graphs of 2048 nodes and more are unaffected).
    batch_size = max(1, min(batch_size, 4 * graph.num_nodes))
    params = (dim, walk_length, walks_per_node, window, negatives, epochs, batch_size, lr, seed)
    key = cache_key("deepwalk-sgd", graph.fingerprint(), *params)

    def compute() -> Tensor:
        return _train(graph, *params, show_progress)

    return cached("deepwalk", key, compute) if cache else compute()


def _train(graph: Graph, dim: int, walk_length: int, walks_per_node: int, window: int, negatives: int,
           epochs: int, batch_size: int, lr: float, seed: int, show: bool) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    n = graph.num_nodes
    g = graph.to("cpu")
    w_in = torch.empty(n, dim).uniform_(-0.5 / dim, 0.5 / dim, generator=gen)
    w_out = torch.zeros(n, dim)
    per_walk = 2 * sum(walk_length - off for off in range(1, window + 1))
    total = epochs * n * walks_per_node * per_walk
    done = 0
    for _ in range(epochs):
        walks = random_walks(g, walk_length, walks_per_node, gen)
        table = _unigram_table(torch.bincount(walks.reshape(-1), minlength=n).double().pow(0.75))
        walks = walks[torch.randperm(walks.shape[0], generator=gen)]
        chunk = max(1, (64 * batch_size) // max(per_walk, 1))  # about 64 batches of pairs per chunk
        for first in progress(range(0, walks.shape[0], chunk), "DeepWalk", show):
            pairs = _pairs(walks[first:first + chunk], window)
            pairs = pairs[torch.randperm(pairs.shape[0], generator=gen)]
            for start in range(0, pairs.shape[0], batch_size):
                batch = pairs[start:start + batch_size]
                # word2vec's schedule: the rate decays linearly to 1e-4 of its start over all pairs
                rate = lr * max(1e-4, 1.0 - done / total)
                _sgd_step(w_in, w_out, batch, table, negatives, rate, gen)
                done += batch.shape[0]
    return w_in


def _unigram_table(weights: Tensor) -> Tensor:
    """word2vec's sampling table: node ids repeated in proportion to ``weights`` (100 slots per node, at
    most 10^7), so that a negative is one uniform index into it."""
    size = min(10_000_000, 100 * weights.numel())
    counts = torch.floor(weights / weights.sum() * size).long().clamp_min(1)
    return torch.repeat_interleave(torch.arange(weights.numel()), counts)


def _sgd_step(w_in: Tensor, w_out: Tensor, batch: Tensor, table: Tensor, negatives: int, rate: float,
              gen: torch.Generator) -> None:
    """One skip-gram negative-sampling SGD step on ``batch`` ``[B, 2]`` pairs (centre, context), with the
    gradients written into the touched rows only (``index_add_``; no optimiser state, no coalescing).
    Negatives are uniform draws from the unigram^0.75 ``table``."""
    b = batch.shape[0]
    neg = table[torch.randint(table.numel(), (b * negatives,), generator=gen)]
    ctx = torch.cat([batch[:, 1:], neg.view(b, negatives)], dim=1)  # [B, 1 + negatives]
    label = torch.zeros(1, 1 + negatives)
    label[0, 0] = 1.0
    u = w_in.index_select(0, batch[:, 0])  # [B, d]
    v = w_out.index_select(0, ctx.reshape(-1)).view(b, 1 + negatives, -1)  # [B, 1 + neg, d]
    score = torch.bmm(v, u.unsqueeze(2)).squeeze(2)
    g = (label - torch.sigmoid(score)) * rate  # ascent direction of log-likelihood, per pair
    grad_u = torch.bmm(g.unsqueeze(1), v).squeeze(1)
    grad_v = g.unsqueeze(2) * u.unsqueeze(1)
    w_in.index_add_(0, batch[:, 0], grad_u)
    w_out.index_add_(0, ctx.reshape(-1), grad_v.reshape(-1, u.shape[1]))


def linear_probe_accuracy(emb: Tensor, y: Tensor, train: Tensor, test: Tensor, epochs: int = 300,
                          seed: Optional[int] = 0) -> float:
    """Accuracy of a logistic regression on ``emb`` (for checking embeddings carry the structure)."""
    torch.manual_seed(seed)
    x = (emb - emb.mean(0)) / emb.std(0).clamp_min(1e-8)
    lin = nn.Linear(x.shape[1], int(y.max()) + 1)
    opt = torch.optim.Adam(lin.parameters(), lr=0.05)
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(lin(x[train]), y[train]).backward()
        opt.step()
    return float((lin(x[test]).argmax(1) == y[test]).float().mean())
