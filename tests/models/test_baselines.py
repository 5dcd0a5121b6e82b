"""The baselines against their published definitions, written densely in float64 with the same weights:
GCN (Kipf & Welling 2017; PyG's GCNConv), ``H' = D^-1/2 (A + I) D^-1/2 H W^T + b``, the bias added after the
aggregation; GAT (Velickovic et al. 2018), ``a_ij = softmax_j LeakyReLU(a_dst . W h_i + a_src . W h_j)`` over
``j`` in N(i) and i, heads concatenated then one averaged output head. And ``fit`` builds them with the
configured widths, heads and dropout."""
import pytest
import torch

import beltrami
from beltrami import GAT, GCN

from tests.reference import random_graph

D = torch.float64
N = 25


@pytest.fixture(scope="module")
def graph():
    return random_graph(n=N, m=70, seed=3).symmetrize()


def _adjacency_with_loops(graph) -> torch.Tensor:
    a = torch.zeros(N, N, dtype=D)
    a[graph.row, graph.col] = 1.0
    a.fill_diagonal_(1.0)
    return a


def _randomise(model):
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()


def test_gcn_equals_kipf_and_welling(graph):
    model = _randomise(GCN(6, 3, graph, hidden=5).double())
    x = torch.randn(N, 6, dtype=D)
    a = _adjacency_with_loops(graph)
    d = a.sum(1).rsqrt()
    a_hat = d[:, None] * a * d[None, :]
    h = torch.relu(a_hat @ x @ model.lin1.weight.T + model.bias1)
    ref = a_hat @ h @ model.lin2.weight.T + model.bias2
    # the model's normalised edge weights are computed in float32 when it is built, then cast
    torch.testing.assert_close(model(x), ref, rtol=1e-6, atol=1e-6)
    assert model.bias1.abs().min() > 0  # the bias is really there: A (X W^T + b) differs by a degree sum


def _gat_layer(a, h, w, att_src, att_dst, heads, width):
    z = (h @ w.T).view(N, heads, width)
    src = (z * att_src).sum(-1)  # [N, H]
    dst = (z * att_dst).sum(-1)
    e = torch.nn.functional.leaky_relu(dst[:, None, :] + src[None, :, :], 0.2)  # [i, j, H]
    e = e.masked_fill(a[:, :, None] == 0, float("-inf"))
    alpha = torch.softmax(e, dim=1)
    return torch.einsum("ijh,jhf->ihf", alpha, z)


def test_gat_equals_velickovic_et_al(graph):
    model = _randomise(GAT(6, 3, graph, hidden=4, heads=2).double())
    x = torch.randn(N, 6, dtype=D)
    a = _adjacency_with_loops(graph)
    h = _gat_layer(a, x, model.lin1.weight, model.att1[1], model.att1[0], 2, 4).reshape(N, 8)
    h = torch.nn.functional.elu(h + model.bias1)
    ref = _gat_layer(a, h, model.lin2.weight, model.att2[1], model.att2[0], 1, 3).mean(1) + model.bias2
    torch.testing.assert_close(model(x), ref, rtol=1e-12, atol=1e-12)


def test_fit_builds_baselines_as_configured(small):
    gat = beltrami.fit(small, model="gat", hidden=4, heads=2, dropout=0.0, epochs=1, progress=False).trained_model
    assert (gat.hidden, gat.heads, gat.dropout) == (4, 2, 0.0) and gat.lin1.weight.shape == (8, small.num_features)
    gcn = beltrami.fit(small, model="gcn", hidden=8, dropout=0.0, epochs=1, progress=False).trained_model
    assert (gcn.hidden, gcn.dropout) == (8, 0.0)
    paper = beltrami.FitConfig.build("cora", "paper", model="gat").model
    assert (paper.hidden, paper.heads, paper.dropout) == (8, 8, 0.6)  # the GAT paper's Planetoid settings


@pytest.mark.parametrize("model", ["gcn", "gat"])
def test_baselines_honour_the_sparse_backend(model):
    """GCN and GAT ignored sparse_backend (read $BELTRAMI_SPARSE_BACKEND on every call); now each kernel
    gives the same logits and fit passes the option on."""
    from beltrami.sparse import available_backends

    g = random_graph(n=12, m=40).symmetrize()
    x = torch.randn(12, 5)
    outs = []
    for backend in available_backends():
        torch.manual_seed(0)
        net = (GCN(5, 3, g, hidden=4, dropout=0.0, backend=backend) if model == "gcn"
               else GAT(5, 3, g, hidden=2, heads=2, dropout=0.0, backend=backend)).eval()
        assert net.backend == backend
        outs.append(net(x))
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown sparse backend 'cusparse'"):
        GCN(5, 3, g, backend="cusparse") if model == "gcn" else GAT(5, 3, g, backend="cusparse")
    res = beltrami.fit("cora", preset="paper", model=model, epochs=1, sparse_backend="torch", progress=False)
    assert res.trained_model.backend == "torch"


@pytest.mark.parametrize("cls", [GCN, GAT])
def test_positional_coordinates_are_concatenated_features(graph, cls):
    """With pos_channels=P the baseline is the same model on [x, pos]: same weights, same output; sparse pos
    (PPR rows) as dense; clear errors when pos is missing or unexpected."""
    torch.manual_seed(0)
    n = graph.num_nodes
    x, pos = torch.randn(n, 5), torch.rand(n, 3)
    with_pos = _randomise(cls(5, 4, graph, dropout=0.0, pos_channels=3)).eval()
    plain = cls(8, 4, graph, dropout=0.0).eval()
    plain.load_state_dict(with_pos.state_dict())
    expected = plain(torch.cat([x, pos], 1))
    torch.testing.assert_close(with_pos(x, pos), expected)
    torch.testing.assert_close(with_pos(x, pos.to_sparse_csr()), expected)
    assert "pos=3" in repr(with_pos)
    with pytest.raises(ValueError, match="pass pos"):
        with_pos(x)
    with pytest.raises(ValueError, match="pos_channels=0"):
        plain(torch.cat([x, pos], 1), pos)


def test_fit_gives_a_baseline_the_positional_encoding(small):
    r = beltrami.fit(small, model="gat", pos_encoding="ppr", ppr_topk=4, epochs=1, progress=False, hidden=4,
                     heads=2)
    assert r.trained_model.pos_channels == r.pos.shape[1] > 0
