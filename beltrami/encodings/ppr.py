"""Personalised PageRank rows (DIGL / GDC, Klicpera et al. 2019) without n x n memory.

``PPR = alpha * sum_k (1 - alpha)^k T^k`` with ``T = D^-1 A`` (random-walk; row ``i`` is the stationary
distribution of a walk from ``i`` that restarts with probability ``alpha``). Computed as the truncated
series by sparse power iteration, ``P_{k+1} = P_k T``, in blocks of rows. Every iteration drops the running term's
entries below ``eps`` (as push-based approximate PPR does), and each row keeps its ``topk`` largest entries
at the end, so memory is O(block * n_kept), never O(n^2).

Error bound (per row, L1): ``||row - exact row||_1 <= (1 - alpha)^K + dropped_i``, where ``K`` is the number
of terms and ``dropped_i`` the mass removed by sparsification (both reported in ``PPRResult``); the final
top-k cut removes a further, also reported, mass.

``normalization="sym-col"`` gives the official BLEND code's positional encoding (PyG's GDC with
``normalization_in="sym"``, ``normalization_out="col"``): ``S = alpha (I - (1 - alpha) D^-1/2 A D^-1/2)^-1``
with its columns then scaled to sum to 1. On an undirected graph ``S = D^1/2 PPR D^-1/2`` (``PPR`` the
random-walk rows above), so ``S`` is computed from the same rows by a per-row and per-column rescaling; the
column sums ``1^T S`` need one extra vector series, not the whole matrix. The top-k cut then applies to the
rescaled rows, and ``dropped`` stays in random-walk units (the bound above holds before the rescaling).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch

from ..graph import Graph
from .progress import progress


@dataclass
class PPRResult:
    """``matrix``: n x n scipy CSR with the PPR rows (``topk`` entries per row at most);
    ``iterations``: K terms summed; ``tail``: ``(1 - alpha)^K``; ``dropped``: [n] mass removed by
    sparsification during the iteration and by the final cut; ``bound``: [n] L1 error bound per row."""

    matrix: sp.csr_matrix
    iterations: int
    tail: float
    dropped: np.ndarray

    @property
    def bound(self) -> np.ndarray:
        return self.tail + self.dropped


def _keep_top(m: sp.csr_matrix, k: Optional[int], eps: Optional[float]):
    """Keep each row's ``k`` largest entries (and only those >= ``eps``); return (kept, dropped mass per row)."""
    m = m.tocsr()
    total = np.asarray(m.sum(axis=1)).ravel()
    if eps is not None:
        m.data[m.data < eps] = 0.0
        m.eliminate_zeros()
    counts = np.diff(m.indptr)
    if k is not None and counts.max(initial=0) > k:
        rows = np.repeat(np.arange(m.shape[0]), counts)
        order = np.lexsort((-m.data, rows))  # grouped by row (ascending), largest value first
        rank = np.arange(m.nnz) - m.indptr[rows[order]]
        keep = np.zeros(m.nnz, dtype=bool)
        keep[order[rank < k]] = True  # the mask keeps CSR's row-major order
        m = sp.csr_matrix((m.data[keep], m.indices[keep], np.r_[0, np.cumsum(np.minimum(counts, k))]),
                          shape=m.shape)
    return m, total - np.asarray(m.sum(axis=1)).ravel()


def ppr(graph: Graph, alpha: float = 0.05, topk: Optional[int] = 64, eps: Optional[float] = 1e-5,
        tol: float = 1e-4, max_iter: Optional[int] = None, block: int = 8192, show_progress: bool = True,
        method: str = "auto", normalization: str = "rw", self_loop_weight: float = 0.0) -> PPRResult:
    """PPR rows of every node.

    Args:
        graph: the graph, undirected for ``sym`` and ``sym-col`` (nodes without edges keep all mass on themselves).
        alpha: teleport probability in (0, 1) (the paper's ``ppr_alpha`` = 0.05).
        topk: keep this many entries per row at the end (None: all).
        eps: during the iteration drop running-term entries below ``eps`` (a push-style threshold, O(nnz)
            per iteration); None keeps them. ``topk=None, eps=None`` is the exact mode.
        tol: stop when the series' tail ``(1 - alpha)^K`` is below ``tol``.
        max_iter: cap on K (default: what ``tol`` needs).
        block: rows processed at once (memory O(block * n_kept * avg_degree)).
        method: ``power`` (the truncated series above), ``solve`` (exact rows from one sparse LU of
            ``I - (1 - alpha) T^T``, solved for ``block`` rows at a time: O(block * n) memory, fast on graphs
            of a few thousand nodes; its fill-in, and so its cost, grows fast on expander-like graphs: a random
            20,000-node graph did not finish in 4 minutes), or ``auto`` (``solve`` up to 5,000 nodes).
        normalization: ``rw`` (rows of the random-walk PPR, each summing to 1), ``sym`` (symmetric PPR,
            ``D^1/2 PPR D^-1/2``, the matrix GDC sparsifies) or ``sym-col`` (the official code's positional
            encoding: symmetric PPR, columns normalised; see the module docstring).
        self_loop_weight: added to the diagonal before normalising (the official code uses 1).

    Shapes:
        ``matrix``: ``[N, N]`` sparse, at most ``topk`` entries per row.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    n = graph.num_nodes
    if topk is not None and not 1 <= topk <= max(n - 1, 1):
        raise ValueError(f"topk must lie in [1, n-1 = {n - 1}], got {topk}")
    need = math.ceil(math.log(tol) / math.log(1.0 - alpha))
    iters = need if max_iter is None else min(need, max_iter)
    if method not in ("auto", "power", "solve"):
        raise ValueError(f"unknown PPR method {method!r}; valid: auto, power, solve")
    if normalization not in ("rw", "sym", "sym-col"):
        raise ValueError(f"unknown PPR normalization {normalization!r}; valid: rw, sym, sym-col")
    if self_loop_weight < 0:
        raise ValueError(f"self_loop_weight must be >= 0, got {self_loop_weight}")
    adj = graph.coalesce().to_scipy().astype(np.float64)
    if self_loop_weight:
        adj = (adj + self_loop_weight * sp.identity(n)).tocsr()
    deg = np.asarray(adj.sum(axis=1)).ravel()
    isolated = deg == 0
    inv = np.where(isolated, 0.0, 1.0 / np.where(isolated, 1.0, deg))
    trans = (sp.diags(inv) @ adj + sp.diags(isolated.astype(np.float64))).tocsr()  # isolated: self-walk
    scale = None
    if normalization == "sym-col":
        scale = _sym_col_scale(trans, np.where(isolated, 1.0, deg), alpha, tol)
    elif normalization == "sym":
        sq = np.sqrt(np.where(isolated, 1.0, deg))
        scale = (sq, 1.0 / sq)
    if method == "solve" or (method == "auto" and n <= 5_000):
        return _ppr_solve(trans, alpha, topk, block, show_progress, scale)
    blocks = []
    dropped = np.zeros(n)
    for start in progress(range(0, n, block), "PPR rows", show_progress):
        rows = np.arange(start, min(start + block, n))
        term = sp.csr_matrix((np.ones(rows.size), (np.arange(rows.size), rows)), shape=(rows.size, n))
        acc = alpha * term
        for _ in range(iters - 1):
            term = (1.0 - alpha) * (term @ trans)
            if eps is not None:
                # mass dropped from the running term would have added at most that much to the row
                term, lost = _keep_top(term, None, eps)
                dropped[rows] += lost
            acc = acc + alpha * term
        acc, lost = _cut(acc, rows, topk, scale)
        dropped[rows] += lost
        blocks.append(acc)
    matrix = sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((n, n))
    return PPRResult(matrix, iters, (1.0 - alpha) ** iters, dropped)


def _sym_col_scale(trans: sp.csr_matrix, deg: np.ndarray, alpha: float, tol: float):
    """Row and column factors turning random-walk PPR rows into column-normalised symmetric PPR.

    ``S = D^1/2 PPR D^-1/2`` has column sums ``c = (sqrt(d)^T PPR) / sqrt(d)``, so the column factor
    ``1 / (sqrt(d) c)`` is ``1 / (sqrt(d)^T PPR)``: one series ``alpha sum_k (1 - alpha)^k v^T T^k`` with
    ``v = sqrt(d)``, summed to ``tol * 1e-6``."""
    sq = np.sqrt(deg)
    term = alpha * sq
    acc = term.copy()
    trans_t = trans.T.tocsr()
    for _ in range(math.ceil(math.log(tol * 1e-6) / math.log(1.0 - alpha))):
        term = (1.0 - alpha) * (trans_t @ term)
        acc += term
    return sq, 1.0 / acc


def _cut(rows_m: sp.csr_matrix, rows: np.ndarray, topk: Optional[int], scale):
    """The final top-k cut of a block of rows, after the ``sym``/``sym-col`` rescaling when ``scale`` is given;
    the dropped mass is measured in random-walk units."""
    if scale is None:
        return _keep_top(rows_m, topk, None)
    row_f, col_f = scale
    total = np.asarray(rows_m.sum(axis=1)).ravel()
    scaled = (sp.diags(row_f[rows]) @ rows_m @ sp.diags(col_f)).tocsr()
    kept, _ = _keep_top(scaled, topk, None)
    unscaled = sp.diags(1.0 / row_f[rows]) @ kept @ sp.diags(1.0 / col_f)
    return kept, total - np.asarray(unscaled.sum(axis=1)).ravel()


def _ppr_solve(trans: sp.csr_matrix, alpha: float, topk: Optional[int], block: int, show: bool,
               scale=None) -> PPRResult:
    """Exact PPR rows: ``PPR^T = alpha (I - (1 - alpha) T^T)^{-1}``, one LU, ``block`` columns at a time."""
    from scipy.sparse.linalg import splu

    n = trans.shape[0]
    lu = splu((sp.identity(n, format="csc") - (1.0 - alpha) * trans.T).tocsc())
    blocks, dropped = [], np.zeros(n)
    for start in progress(range(0, n, block), "PPR rows (exact)", show):
        stop = min(start + block, n)
        rhs = np.zeros((n, stop - start))
        rhs[np.arange(start, stop), np.arange(stop - start)] = alpha
        rows = sp.csr_matrix(np.ascontiguousarray(lu.solve(rhs).T))
        rows, lost = _cut(rows, np.arange(start, stop), topk, scale)
        dropped[start:stop] = lost
        blocks.append(rows)
    return PPRResult(sp.vstack(blocks).tocsr(), 0, 0.0, dropped)


def ppr_graph(result: PPRResult, symmetric: bool = True) -> Graph:
    """The DIGL rewired graph: an edge wherever the (top-k) PPR matrix is non-zero, without self-loops."""
    coo = result.matrix.tocoo()
    g = Graph.from_edge_index(torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64)), result.matrix.shape[0])
    g = g.symmetrize() if symmetric else g.coalesce()
    return g.remove_self_loops()
