import pytest
import torch

from beltrami.functions import EdgeAttention
from beltrami.functions.attention import KINDS

from tests.reference import dense_attention, random_graph

D = torch.float64


def _att(kind, normalisation="softmax", attend_on="both", heads=2, dim=7, pos_dim=3, init="xavier",
         normalise_over="rows"):
    torch.manual_seed(0)
    return EdgeAttention(dim, attention_dim=4 * heads, heads=heads, kind=kind, normalisation=normalisation,
                         attend_on=attend_on, pos_dim=pos_dim, init=init, normalise_over=normalise_over).double()


def _call(att, g, z):
    c = g.csr()
    return att(z, c.crow, c.col, c.row, c.t_crow, c.t_col, c.t_perm, c.t_perm_inv)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("normalisation", ["softmax", "squareplus"])
@pytest.mark.parametrize("normalise_over", ["rows", "cols"])
def test_attention_matches_dense(kind, normalisation, normalise_over):
    g = random_graph(n=14, isolated=2)
    att = _att(kind, normalisation, normalise_over=normalise_over)
    z = torch.randn(14, 7, dtype=D)
    out = _call(att, g, z)
    torch.testing.assert_close(out, dense_attention(att, g, z))
    sums = torch.zeros(14, 2, dtype=D).index_add(0, g.row if normalise_over == "rows" else g.col, out)
    nonempty = sums.abs().sum(1) > 0
    torch.testing.assert_close(sums[nonempty], torch.ones_like(sums[nonempty]))


@pytest.mark.parametrize("normalisation", ["softmax", "squareplus"])
def test_column_normalisation_gradcheck(normalisation):
    g = random_graph(n=7, m=16)
    att = _att("scaled_dot", normalisation, heads=1, dim=4, pos_dim=2, normalise_over="cols")
    z = torch.randn(7, 4, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: _call(att, g, z), (z,))


@pytest.mark.parametrize("attend_on", ["pos", "feat"])
def test_attend_on_subsets_of_columns(attend_on):
    g = random_graph()
    att = _att("scaled_dot", attend_on=attend_on)
    z = torch.randn(g.num_nodes, 7, dtype=D)
    out = _call(att, g, z)
    torch.testing.assert_close(out, dense_attention(att, g, z))
    z2 = z.clone()
    cols = slice(3, 7) if attend_on == "pos" else slice(0, 3)  # the columns attention must ignore
    z2[:, cols] = torch.randn_like(z2[:, cols])
    torch.testing.assert_close(_call(att, g, z2), out)


@pytest.mark.parametrize("kind", KINDS)
def test_attention_gradcheck_parameters_and_z(kind):
    g = random_graph(n=7, m=16)
    att = _att(kind, heads=1, dim=4, pos_dim=2)
    z = torch.randn(7, 4, dtype=D, requires_grad=True)
    params = [p for p in att.parameters()]
    fn = lambda z, *ps: _call(att, g, z)  # noqa: E731 - parameters are used through the module
    assert torch.autograd.gradcheck(fn, (z, *params))


def test_constant_init_starts_uniform_and_learns_at_first_order():
    g = random_graph()
    att = _att("scaled_dot", init="constant")
    out = _call(att, g, torch.randn(g.num_nodes, 7, dtype=D))
    deg = g.degree().to(D)
    torch.testing.assert_close(out, (1.0 / deg[g.row]).unsqueeze(1).expand(-1, 2), atol=1e-4, rtol=0)
    # the biases are drawn (as nn.Linear does), so the scores' gradient in W_K is b_Q z_j, not O(1e-5)
    assert att.W_K.bias.abs().min() > 0 and att.W_K.bias.abs().max() <= 1 / 7 ** 0.5
    c = g.csr()
    att.scores(torch.randn(g.num_nodes, 7, dtype=D), c.crow, c.col, c.row, c.t_crow, c.t_col, c.t_perm,
               c.t_perm_inv).sum().backward()
    assert att.W_K.weight.grad.abs().max() > 1e-3


def test_exp_product_separates_positions_from_features():
    g = random_graph()
    att = _att("exp_product")
    z = torch.randn(g.num_nodes, 7, dtype=D)
    out = _call(att, g, z)
    with torch.no_grad():  # an infinite positional length scale leaves the feature kernel alone
        att.lengthscale_p.fill_(1e12)
    feat_only = _call(att, g, z)
    assert not torch.allclose(out, feat_only)
    z2 = z.clone()
    z2[:, :3] = torch.randn_like(z2[:, :3])
    torch.testing.assert_close(_call(att, g, z2), feat_only)


def test_bad_options():
    with pytest.raises(ValueError, match="unknown attention kind 'dot'"):
        EdgeAttention(4, kind="dot")
    with pytest.raises(ValueError, match="exp_product.*pos_dim=0"):
        EdgeAttention(4, kind="exp_product", pos_dim=0)
    with pytest.raises(ValueError, match="multiple of heads"):
        EdgeAttention(4, attention_dim=6, heads=4)
    with pytest.raises(ValueError, match="no such columns"):
        EdgeAttention(4, attend_on="pos", pos_dim=0)
    with pytest.raises(ValueError, match="unknown attention normalisation"):
        EdgeAttention(4, normalisation="sparsemax")
