"""Table 1 of the paper as tests: GNNs that are particular settings of graph Beltrami flow.

Each setting is built from beltrami's own pieces (a diffusion function, a scheme of ``solve``, the models'
encoders, fit's rewiring) and compared, in float64, with the stand-alone layer or model in the limit the
paper states: one explicit Euler step whose size times the diffusivity is 1 is one layer (``z + A z - z``),
several smaller steps are the residual form of eq. 11 with parameters shared across layers.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import beltrami
from beltrami.functions import BeltramiDiffusion, FrozenAttentionDiffusion, LaplacianDiffusion
from beltrami.functions.attention import EdgeAttention
from beltrami.models import GCN
from beltrami.models.gat import gat_layer
from beltrami.solvers import solve

from tests.reference import dense, dense_attention, random_graph

D = torch.float64


class GATScores(EdgeAttention):
    """GAT's additive scores ``LeakyReLU(a_l . z_i + a_r . z_j)`` in place of the dot product, normalised over
    each row by the softmax of :class:`EdgeAttention` (what a user-written attention looks like)."""

    def __init__(self, dim: int, slope: float = 0.2) -> None:
        super().__init__(dim, attention_dim=1, heads=1)
        self.fusable, self.slope = False, slope
        self.att = nn.Parameter(torch.randn(2, 1, dim))

    def scores(self, z, crow, col, row, *csr):
        return F.leaky_relu((z @ self.att[0].T)[row] + (z @ self.att[1].T)[col], self.slope)


def _gat_graph(n=12):
    return random_graph(n=n, m=40).symmetrize().remove_self_loops().add_self_loops()  # as GAT's own graph


def test_gat_is_one_euler_step_of_the_flow_on_features():
    """GAT (Table 1: features X, a(x_i, x_j), fixed E, explicit fixed step): with z(0) = W h, one Euler step
    of size h_t = 1 / sigma(alpha) gives sum_j a_ij W h_j, GAT's aggregation with the same weights."""
    torch.manual_seed(0)
    g, n, width = _gat_graph(), 12, 5
    h, lin = torch.randn(n, 7, dtype=D), nn.Linear(7, width, bias=False).double()
    att = GATScores(width).double()
    f = BeltramiDiffusion(g, width, attention=att).double()  # alpha_train = 0: sigma(alpha) = 1/2
    z0 = lin(h)
    f.set_initial(z0)
    one_step = solve(f, z0, 2.0, scheme="euler", step_size=2.0).z
    layer = gat_layer(g, z0.view(n, 1, width), att.att[0], att.att[1], 0.2, 0.0, False).view(n, width)
    torch.testing.assert_close(one_step, layer)


def test_small_steps_are_residual_gat_layers_with_shared_parameters():
    """Eq. 11: each step of size tau is x + tau sigma(alpha) (GAT(x) - x), the attention recomputed at every
    layer from the current x with the same parameters; the frozen flow keeps a(x(0)) in every layer."""
    torch.manual_seed(1)
    g, n, width, tau = _gat_graph(), 12, 4, 0.5
    att = GATScores(width).double()
    x0 = torch.randn(n, width, dtype=D)
    layer = lambda x: gat_layer(g, x.view(n, 1, width), att.att[0], att.att[1], 0.2, 0.0, False).view(n, width)  # noqa: E731
    for cls in (BeltramiDiffusion, FrozenAttentionDiffusion):
        f = cls(g, width, attention=att).double()
        f.set_initial(x0)
        x = x0
        for _ in range(3):
            if cls is BeltramiDiffusion:
                aggregated = layer(x)
            else:  # the same aggregation with the attention of x(0)
                aggregated = dense(g, dense_attention_values(att, g, x0)) @ x
            x = x + tau * 0.5 * (aggregated - x)
        torch.testing.assert_close(solve(f, x0, 3 * tau, scheme="euler", step_size=tau).z, x)


def dense_attention_values(att, g, z):
    """The head-mean of GATScores' row-softmax attention, densely: ``[E]``."""
    s = torch.full((g.num_nodes, g.num_nodes), float("-inf"), dtype=z.dtype)
    s[g.row, g.col] = F.leaky_relu((z @ att.att[0].T)[g.row, 0] + (z @ att.att[1].T)[g.col, 0], att.slope)
    return torch.softmax(s, dim=1)[g.row, g.col]


def test_gcn_is_two_fixed_diffusion_steps_between_its_linear_maps():
    """GCN (Table 1's fixed a_ij row; the Onsager form X' = A X W of section 3.4): each layer is one Euler
    step of size 1 of the fixed linear diffusion dz/dt = A_hat z - z after the layer's W, then its bias
    (and ReLU). Tested against beltrami.GCN's own forward with the same weights."""
    torch.manual_seed(2)
    g = random_graph(n=12, m=40).symmetrize()
    x = torch.randn(12, 6, dtype=D)
    gcn = GCN(6, 3, g, hidden=5, dropout=0.0).double().eval()
    with torch.no_grad():
        gcn.bias1.normal_()
        gcn.bias2.normal_()
    flow = LaplacianDiffusion(gcn.graph, 5, norm="sym").double()  # A_hat of GCN's graph with self-loops
    step = lambda z: solve(flow, z, 1.0, scheme="euler", step_size=1.0).z  # noqa: E731
    flow3 = LaplacianDiffusion(gcn.graph, 3, norm="sym").double()
    hidden = F.relu(step(gcn.lin1(x)) + gcn.bias1)
    out = solve(flow3, gcn.lin2(hidden), 1.0, scheme="euler", step_size=1.0).z + gcn.bias2
    torch.testing.assert_close(out, gcn(x))


def test_grand_l_is_blend_without_positions_and_its_flow_is_linear_attention_diffusion():
    """GRAND-l: fit's ``model="grand-l"`` is BLEND with no positional coordinates whose flow is
    sigma(alpha) (A(x(0)) - I) x, the attention of the features at t = 0 (checked densely)."""
    g = random_graph(n=12, m=40).symmetrize().remove_self_loops()
    x = torch.randn(12, 6)
    y = torch.arange(12) % 3
    masks = tuple(torch.arange(12) % 3 == i for i in range(3))
    res = beltrami.fit((g.edge_index, x, y, masks), preset="fast", model="grand-l", epochs=1, progress=False)
    model = res.trained_model.double().eval()
    assert model.pos_encoder is None and res.pos is None and isinstance(model.function, FrozenAttentionDiffusion)
    z0 = model.encode(x.double())
    model.function.set_initial(z0)
    z = torch.randn_like(z0)
    graph = beltrami.Graph.from_edge_index(torch.stack([model.function.row, model.function.col]), 12)
    values = dense_attention(model.function.attention, graph, z0).mean(1)
    expected = torch.sigmoid(model.function.alpha_train[0]) * (dense(graph, values) @ z - z)
    torch.testing.assert_close(model.function(torch.zeros(()), z), expected)


def test_digl_graph_is_the_top_k_of_dense_ppr_rows():
    """DIGL* (Table 1: a(x_i, x_j) on a fixed E(U), U the PPR rows of eq. 12): BLEND-kNN's rewired graph
    (fit's ``rewire="ppr"``) links each node to the k largest entries of its dense PPR row
    U = (1 - beta) (I - beta D^-1 A)^-1 (the node's own entry among them, as DIGL's top-k counts it), made
    symmetric, plus BLEND's self-loops."""
    g = random_graph(n=30, m=90, seed=5, isolated=0).symmetrize().remove_self_loops()
    x, y = torch.randn(30, 4), torch.arange(30) % 3
    masks = tuple(torch.arange(30) % 3 == i for i in range(3))
    cfg = beltrami.training.FitConfig.build(None, "fast", model="blend-knn", rewire="ppr", rewire_k=4,
                                            pos_encoding="ppr", ppr_topk=8, ppr_alpha=0.15, progress=False)
    from beltrami.training.data import as_dataset
    from beltrami.training.positional import positional_coordinates, rewired_graph

    ds = as_dataset((g.edge_index, x, y, masks), cfg, 0)
    rewired = rewired_graph(cfg, ds, positional_coordinates(cfg, ds))
    a = g.to_scipy().toarray()
    u = 0.15 * np.linalg.inv(np.eye(30) - 0.85 * a / a.sum(1, keepdims=True))
    top = np.zeros((30, 30), dtype=bool)
    for i in range(30):
        top[i, np.argsort(-u[i])[:4]] = True
    expected = top | top.T | np.eye(30, dtype=bool)
    assert np.array_equal(rewired.to_scipy().toarray() != 0, expected)


@pytest.mark.parametrize("isolated", [0, 2])
def test_digl_graph_with_the_official_encoding_is_the_official_gdc_rewiring(isolated):
    """With the official GDC encoding (``ppr_normalization="sym-col"``) and ``rewire_symmetric=False``, the
    paper preset of BLEND-kNN: GDC's top-k per column of S = beta (I - (1 - beta) D^-1/2 (A + I) D^-1/2)^-1,
    and node i hears j when S[i, j] is among column j's top k, as the official model reads GDC's edges.
    Isolated nodes: GDC's dense top k would add zero entries (edges to arbitrary nodes); ours keeps S > 0."""
    g = random_graph(n=30, m=90, seed=5, isolated=isolated).symmetrize().remove_self_loops()
    x, y = torch.randn(30, 4), torch.arange(30) % 3
    masks = tuple(torch.arange(30) % 3 == i for i in range(3))
    cfg = beltrami.training.FitConfig.build(None, "fast", model="blend-knn", rewire="ppr", rewire_k=4,
                                            rewire_symmetric=False, pos_encoding="ppr", ppr_topk=8, ppr_alpha=0.15,
                                            ppr_normalization="sym-col", self_loops=True, progress=False)
    from beltrami.training.data import as_dataset
    from beltrami.training.positional import positional_coordinates, rewired_graph

    ds = as_dataset((g.edge_index, x, y, masks), cfg, 0)
    rewired = rewired_graph(cfg, ds, positional_coordinates(cfg, ds))
    a = g.to_scipy().toarray() + np.eye(30)
    d = 1 / np.sqrt(a.sum(1))
    s = 0.15 * np.linalg.inv(np.eye(30) - 0.85 * d[:, None] * a * d[None, :])
    top = np.zeros((30, 30), dtype=bool)
    for j in range(30):
        top[np.argsort(-s[:, j])[:4], j] = True
    assert not np.array_equal(top, top.T)  # one direction: the orientation is tested
    positive = s > 1e-12
    assert (top & ~positive).any() == bool(isolated)  # GDC's zero entries: the kept difference is tested
    assert np.array_equal(rewired.to_scipy().toarray() != 0, (top & positive) | np.eye(30, dtype=bool))
