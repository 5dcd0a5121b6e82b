"""Positional coordinates and the diffusion graph of a training run, computed once and cached on disk."""
from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ..cache import cache_key, cached
from ..csr_tensor import sparse_csr
from ..datasets import Dataset
from ..encodings import knn_graph, ppr, ppr_graph
from ..graph import Graph


# ppr_topk=None stores n entries per row (the official code's dense encoding on Cora and CiteSeer); beyond
# this size that is n^2 memory, so it is refused.
MAX_FULL_PPR_NODES = 20_000


def _ppr_matrix(ds: Dataset, alpha: float, topk: Optional[int], show: bool, normalization: str = "rw",
                self_loop_weight: float = 0.0) -> sp.csr_matrix:
    key = cache_key("ppr", ds.graph.fingerprint(), alpha, topk, normalization, self_loop_weight)

    def compute():
        m = ppr(ds.graph, alpha, topk=topk, show_progress=show, normalization=normalization,
                self_loop_weight=self_loop_weight).matrix
        return {"indptr": torch.from_numpy(m.indptr.astype(np.int64)), "indices": torch.from_numpy(m.indices.astype(np.int64)),
                "data": torch.from_numpy(m.data.astype(np.float32))}

    d = cached("ppr", key, compute)
    n = ds.num_nodes
    return sp.csr_matrix((d["data"].numpy(), d["indices"].numpy(), d["indptr"].numpy()), shape=(n, n))


def _ppr_rows_dense(ds: Dataset, alpha: float, show: bool, normalization: str, self_loop_weight: float) -> Tensor:
    """Every entry of every PPR row, ``[N, N]`` float32, cached as a dense tensor (a third of the CSR form's
    bytes when the rows are full, and no conversion on load)."""
    key = cache_key("ppr-dense", ds.graph.fingerprint(), alpha, normalization, self_loop_weight)

    def compute():
        m = _ppr_matrix(ds, alpha, None, show, normalization, self_loop_weight)
        return torch.from_numpy(m.toarray().astype(np.float32, copy=False))

    return cached("ppr-dense", key, compute)


def positional_coordinates(cfg, ds: Dataset) -> Optional[Tensor]:
    """``None``, PPR rows ``[N, N]`` (top-k: a sparse CSR tensor; all entries, ``ppr_topk=None``: dense), or
    dense DeepWalk / Poincare-ball embeddings ``[N, d]``."""
    enc, show, seed = cfg.encoding, cfg.run.progress, cfg.run.seed
    if enc.pos_encoding is None:
        return None
    if enc.pos_encoding == "ppr":
        if enc.ppr_topk is None and ds.num_nodes > MAX_FULL_PPR_NODES:
            raise ValueError(f"ppr_topk=None keeps all {ds.num_nodes} entries of every PPR row (n^2 = "
                             f"{ds.num_nodes ** 2:,} values); allowed up to {MAX_FULL_PPR_NODES:,} nodes. "
                             f"Pass ppr_topk=k (e.g. 64) on graphs this large")
        loop = 1.0 if enc.ppr_normalization == "sym-col" and cfg.data.self_loops else 0.0
        if enc.ppr_topk is None:
            return _ppr_rows_dense(ds, enc.ppr_alpha, show, enc.ppr_normalization, loop)
        m = _ppr_matrix(ds, enc.ppr_alpha, enc.ppr_topk, show, enc.ppr_normalization, loop)
        return sparse_csr(torch.from_numpy(m.indptr.astype(np.int64)), torch.from_numpy(m.indices.astype(np.int64)),
                          torch.from_numpy(m.data.astype(np.float32)), m.shape)
    if enc.pos_encoding == "hyperbolic":
        from ..encodings.hyperbolic import poincare_embeddings

        key = cache_key("poincare", ds.graph.fingerprint(), enc.hyperbolic_dim, seed)
        return cached("poincare", key, lambda: poincare_embeddings(ds.graph, dim=enc.hyperbolic_dim, seed=seed,
                                                                   show_progress=show))
    from ..encodings.deepwalk import deepwalk_embeddings

    return deepwalk_embeddings(ds.graph, dim=enc.deepwalk_dim, seed=seed, show_progress=show)


def rewired_graph(cfg, ds: Dataset, pos: Optional[Tensor]) -> Graph:
    """The graph BLEND diffuses on: the input graph, or its DIGL/kNN rewiring; plus self-loops if asked."""
    g, enc = ds.graph, cfg.encoding
    if enc.rewire is not None and cfg.model.kind not in ("gcn", "gat"):
        if enc.rewire == "ppr" or (pos is not None and enc.pos_encoding == "ppr"):
            g = _digl_graph(cfg, ds)
        else:
            # on the training device: a GPU does ogbn-arxiv's 169K x 169K blocked products in seconds
            coords = knn_coordinates(enc.rewire_on, pos, ds.x).to(cfg.run.device)
            g = knn_graph(coords, enc.rewire_k, metric=enc.rewire_metric, symmetric=enc.rewire_symmetric,
                          show_progress=cfg.run.progress)
    return g.add_self_loops() if cfg.data.self_loops else g


def _digl_graph(cfg, ds: Dataset) -> Graph:
    """kNN in PPR coordinates: DIGL's top-k PPR graph. With the official GDC encoding (``sym-col``) it is the
    official code's ``rewiring="gdc"``: GDC keeps each column's top k of the symmetric PPR of ``A + I`` (the
    column scaling comes after the cut, so it does not change which entries stay), and the official model,
    aggregating ``out[edge_index[0]] += a x[edge_index[1]]``, lets node i hear j when ``S[i, j]`` is among the
    top k of column j. ``S`` is symmetric, so that is row j's top k, transposed; ``rewire_symmetric`` adds the
    reverse edges instead. With ``rw`` the graph comes from the random-walk PPR rows. Only positive PPR
    entries become edges: where a component has fewer than k nodes GDC's dense top k would also keep
    zero entries, edges to arbitrary nodes (``docs/design-notes.md``, BLEND-kNN)."""
    from ..encodings.ppr import PPRResult

    enc = cfg.encoding
    official = enc.ppr_normalization == "sym-col"
    loops = 1.0 if official and cfg.data.self_loops else 0.0
    m = _ppr_matrix(ds, enc.ppr_alpha, enc.rewire_k, cfg.run.progress, "sym" if official else "rw", loops)
    g = ppr_graph(PPRResult(m, 0, 0.0, np.zeros(ds.num_nodes)), symmetric=enc.rewire_symmetric)
    return g if enc.rewire_symmetric else g.transpose()


def knn_coordinates(on: str, pos: Optional[Tensor], x: Tensor) -> Tensor:
    """The coordinates kNN rewiring uses: positions, features, or both concatenated (positions if any)."""
    if on == "feat" or pos is None:
        return x
    if on == "pos":
        return pos
    return torch.cat([pos, x], dim=1)


def dynamic_rewire(cfg, model, x: Tensor, pos: Optional[Tensor]) -> None:
    """Dynamic rewiring E(U): rebuild the diffusion graph by kNN in the model's current encoded coordinates
    ``z(0) = [phi(U), psi(X)]`` (positions, features or both per ``rewire_on``), as the paper did between
    epochs."""
    with torch.no_grad():
        was_training = model.training
        model.eval()
        z0 = model.encode(x, pos)
        model.train(was_training)
    hp = model.hidden_pos
    coords = knn_coordinates(cfg.encoding.rewire_on, z0[:, :hp] if hp else None, z0[:, hp:])
    enc = cfg.encoding
    g = knn_graph(coords, enc.rewire_k, metric=enc.rewire_metric, symmetric=enc.rewire_symmetric)
    model.set_graph(g.add_self_loops() if cfg.data.self_loops else g)
