import numpy as np
import pytest
import torch

import beltrami
from beltrami.encodings import knn_graph, ppr, ppr_graph
from beltrami.encodings.deepwalk import deepwalk_embeddings, linear_probe_accuracy, random_walks

from tests.reference import random_graph


def _dense_ppr(g, alpha):
    a = g.coalesce().to_scipy().toarray()
    d = a.sum(1)
    t = np.where(d[:, None] > 0, a / np.where(d > 0, d, 1)[:, None], np.eye(len(d)))
    return alpha * np.linalg.inv(np.eye(len(d)) - (1 - alpha) * t)


@pytest.mark.parametrize("method", ["solve", "power"])
def test_ppr_exact_mode_matches_dense(method):
    g = random_graph(n=40, m=120, seed=2).symmetrize()  # includes isolated nodes
    r = ppr(g, 0.15, topk=None, eps=None, tol=1e-12, method=method, show_progress=False)
    np.testing.assert_allclose(r.matrix.toarray(), _dense_ppr(g, 0.15), atol=1e-10)


def _dense_gdc_positions(g, alpha, loop, columns=True):
    """The official code's positional encoding, densely: symmetric PPR of A + loop I, columns summing to 1
    (``columns=False``: the symmetric PPR itself, which GDC's rewiring sparsifies)."""
    a = g.coalesce().to_scipy().toarray() + loop * np.eye(g.num_nodes)
    d = a.sum(1)
    t = a / np.sqrt(d)[:, None] / np.sqrt(d)[None, :]
    s = alpha * np.linalg.inv(np.eye(len(d)) - (1 - alpha) * t)
    return s / s.sum(0, keepdims=True) if columns else s


@pytest.mark.parametrize("method", ["solve", "power"])
def test_ppr_sym_is_the_symmetric_ppr_gdc_sparsifies(method):
    g = random_graph(n=40, m=120, seed=4).symmetrize()
    r = ppr(g, 0.05, topk=None, eps=None, tol=1e-12, method=method, normalization="sym", self_loop_weight=1.0,
            show_progress=False)
    np.testing.assert_allclose(r.matrix.toarray(), _dense_gdc_positions(g, 0.05, 1.0, columns=False), atol=1e-9)


@pytest.mark.parametrize("method", ["solve", "power"])
def test_ppr_sym_col_matches_the_official_dense_encoding(method):
    g = random_graph(n=40, m=120, seed=4).symmetrize()
    ref = _dense_gdc_positions(g, 0.05, 1.0)
    r = ppr(g, 0.05, topk=None, eps=None, tol=1e-12, method=method, normalization="sym-col",
            self_loop_weight=1.0, show_progress=False)
    np.testing.assert_allclose(r.matrix.toarray(), ref, atol=1e-9)
    assert not np.allclose(ref, _dense_ppr(g, 0.05))  # a different encoding from the random-walk rows
    top = ppr(g, 0.05, topk=6, eps=None, tol=1e-12, method=method, normalization="sym-col",
              self_loop_weight=1.0, show_progress=False).matrix.toarray()
    for i in range(40):  # the top-k cut keeps each row's largest rescaled entries
        np.testing.assert_allclose(np.sort(top[i])[-6:], np.sort(ref[i])[-6:], atol=1e-9)


def test_ppr_approximate_mode_within_its_bound():
    g = random_graph(n=60, m=240, seed=3).symmetrize()
    exact = _dense_ppr(g, 0.1)
    r = ppr(g, 0.1, topk=8, eps=1e-3, tol=1e-3, method="power", show_progress=False)
    err = np.abs(r.matrix.toarray() - exact).sum(1)
    assert (err <= r.bound + 1e-12).all()
    assert (np.diff(r.matrix.indptr) <= 8).all()
    # the kept entries are (nearly) the 8 largest of the exact rows
    overlap = np.mean([len(set(np.argsort(-exact[i])[:8]) & set(r.matrix[i].indices)) / 8 for i in range(60)])
    assert overlap > 0.8


def test_ppr_graph_is_symmetric_without_loops():
    g = random_graph(n=30, m=90, seed=1).symmetrize()
    rew = ppr_graph(ppr(g, 0.05, topk=5, show_progress=False))
    assert rew.is_symmetric() and not rew.has_self_loops()


def test_knn_matches_brute_force():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    for metric in ("cosine", "euclidean"):
        g = knn_graph(x, 3, metric=metric, symmetric=False, block=7)
        if metric == "cosine":
            xn = x / x.norm(dim=1, keepdim=True)
            s = xn @ xn.T
        else:
            s = -torch.cdist(x, x) ** 2
        s.fill_diagonal_(float("-inf"))
        ref = beltrami.Graph.from_edge_index(torch.stack([torch.arange(50).repeat_interleave(3),
                                                          s.topk(3, dim=1).indices.reshape(-1)]), 50).coalesce()
        assert g == ref


def test_knn_union_and_symmetry():
    x = torch.randn(30, 3)
    base = random_graph(n=30, m=40, seed=4).symmetrize().remove_self_loops()
    g = knn_graph(x, 2, union_with=base)
    a, b = g.to_scipy().toarray(), base.to_scipy().toarray()
    assert ((a - b) >= 0).all() and g.is_symmetric()  # only adds edges, as configured


def test_random_walks_follow_edges():
    g = random_graph(n=20, m=60, seed=5).symmetrize()
    walks = random_walks(g, 6, 3, torch.Generator().manual_seed(0))
    a = g.to_scipy().toarray() > 0
    deg = g.degree()
    for w in walks:
        for u, v in zip(w[:-1].tolist(), w[1:].tolist()):
            assert a[u, v] or (deg[u] == 0 and u == v)


def test_deepwalk_separates_sbm_blocks():
    """A 4-block SBM whose features carry nothing (signal 0): a linear probe on 16-dim DeepWalk embeddings
    reaches >= 0.8 accuracy (chance 0.25); the blocks are visible only through the walks."""
    ds = beltrami.load_dataset("synthetic", num_nodes=600, num_classes=4, homophily=0.9, avg_degree=8, signal=0.0,
                               seed=0)
    emb = deepwalk_embeddings(ds.graph, dim=16, walks_per_node=5, show_progress=False, cache=False)
    perm = torch.randperm(ds.num_nodes, generator=torch.Generator().manual_seed(0))
    train = torch.zeros(ds.num_nodes, dtype=torch.bool)
    train[perm[:300]] = True
    assert linear_probe_accuracy(emb, ds.y, train, ~train) >= 0.8


@pytest.mark.parametrize("n", [20, 60])
def test_deepwalk_on_a_tiny_graph_stays_bounded(n):
    """Few nodes, a default batch of 8192 pairs: each row is met hundreds of times per batch. Before the
    batch was capped at 4 pairs per node, rows of a 60-node graph reached norm 2e5; word2vec's sequential
    updates keep them near 1."""
    g = random_graph(n=n, m=5 * n, seed=1).symmetrize()
    emb = deepwalk_embeddings(g, dim=16, show_progress=False, cache=False)
    assert torch.isfinite(emb).all()
    assert float(emb.norm(dim=1).max()) < 10.0


def test_encoding_errors():
    g = random_graph(n=10, m=20)
    with pytest.raises(ValueError, match="alpha must lie in"):
        ppr(g, 1.5)
    with pytest.raises(ValueError, match="topk must lie"):
        ppr(g, 0.1, topk=10)
    with pytest.raises(ValueError, match="unknown PPR normalization 'col'"):
        ppr(g, 0.1, topk=5, normalization="col")
    with pytest.raises(ValueError, match="k must lie"):
        knn_graph(torch.randn(10, 2), 10)
    bad = torch.randn(10, 2)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        knn_graph(bad, 2)
    with pytest.raises(ValueError, match="dim must be >= 1"):
        deepwalk_embeddings(g, dim=0)


def _balanced_tree(branching=3, depth=4):
    edges, frontier, nid = [], [0], 1
    for _ in range(depth):
        nxt = []
        for p in frontier:
            for _ in range(branching):
                edges.append((p, nid))
                nxt.append(nid)
                nid += 1
        frontier = nxt
    return beltrami.Graph.from_edge_index(torch.tensor(edges).T, nid).symmetrize()


def test_poincare_embedding_of_a_tree_has_low_distortion():
    """Balanced tree (branching 3, depth 4, 121 nodes). Reconstruction MAP (neighbours ranked by distance
    among all nodes; 1 = perfect): >= 0.9 in 5 dimensions and >= 0.75 in 2 (measured 0.98 and 0.84); all
    points strictly inside the ball."""
    from beltrami.encodings.hyperbolic import poincare_embeddings, reconstruction_map

    g = _balanced_tree()
    for dim, floor in ((5, 0.9), (2, 0.75)):
        emb = poincare_embeddings(g, dim=dim, epochs=100, show_progress=False)
        assert float(emb.norm(dim=1).max()) < 1.0
        assert reconstruction_map(g, emb) >= floor


def test_hyperbolic_coordinates_feed_blend():
    ds = beltrami.load_dataset("synthetic", num_nodes=150, num_classes=3, num_features=4, seed=2)
    res = beltrami.fit(ds, preset="fast", pos_encoding="hyperbolic", hyperbolic_dim=4, epochs=2, progress=False)
    assert res.trained_model.pos_channels == 4
