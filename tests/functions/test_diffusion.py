import numpy as np
import pytest
import torch

import beltrami
from beltrami.functions import BeltramiDiffusion, FrozenAttentionDiffusion, LaplacianDiffusion
from beltrami.sparse import available_backends, triton_kernels

from tests.reference import dense, dense_attention, dense_diffusion_rhs, random_graph

D = torch.float64
T0 = torch.tensor(0.0, dtype=D)


def _beltrami(cls=BeltramiDiffusion, g=None, dim=6, **kw):
    torch.manual_seed(1)
    g = random_graph() if g is None else g
    kw.setdefault("pos_dim", 2)
    f = cls(g, dim, attention_dim=4, heads=2, **kw).double()
    with torch.no_grad():
        f.alpha_train.copy_(torch.tensor([0.3, -0.7]))
        f.beta_train.fill_(0.4)
    return g, f


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.parametrize("source", [False, True])
def test_beltrami_rhs_matches_dense(separate, source):
    g, f = _beltrami(separate_diffusivity=separate, add_source=source)
    z0 = torch.randn(g.num_nodes, 6, dtype=D)
    z = torch.randn(g.num_nodes, 6, dtype=D)
    f.set_initial(z0)
    values = dense_attention(f.attention, g, z).mean(1)  # A recomputed at z
    torch.testing.assert_close(f(T0, z), dense_diffusion_rhs(f, g, z, values))


def test_frozen_uses_attention_of_z0():
    g, f = _beltrami(FrozenAttentionDiffusion, add_source=True)
    z0, z = torch.randn(g.num_nodes, 6, dtype=D), torch.randn(g.num_nodes, 6, dtype=D)
    with pytest.raises(RuntimeError, match="set_initial"):
        f(T0, z)
    f.set_initial(z0)
    values = dense_attention(f.attention, g, z0).mean(1)
    torch.testing.assert_close(f(T0, z), dense_diffusion_rhs(f, g, z, values))
    # linear in z: f(z1 + z2) = f(z1) + f(z2) - (the source term, counted once)
    src = f.beta_train * z0
    torch.testing.assert_close(f(T0, z + z0) - src, (f(T0, z) - src) + (f(T0, z0) - src))


def test_row_stochastic_so_constants_are_stationary():
    """A is row-stochastic on rows with edges: a constant state does not move (no source term)."""
    g, f = _beltrami()
    g_loops = g.add_self_loops()  # every row non-empty
    _, f = _beltrami(g=g_loops)
    z = torch.ones(g_loops.num_nodes, 6, dtype=D) * 3.0
    torch.testing.assert_close(f(T0, z), torch.zeros_like(z))


@pytest.mark.skipif("cpp" not in available_backends(), reason="no C++ compiler")
@pytest.mark.parametrize("kind", ["scaled_dot", "cosine_sim", "pearson"])
def test_fused_cpp_attention_matches_dense(kind):
    """backend="cpp" runs dot-product attention, softmax, head mean and aggregation as one C++ kernel."""
    g, f = _beltrami(kind=kind, add_source=True, backend="cpp")
    assert f.fused and not f.fused_on_cuda
    # the C++ kernel takes any width (Triton's, on CUDA, at most MAX_WIDTH)
    wide = BeltramiDiffusion(g, triton_kernels.MAX_WIDTH + 1, heads=1, attention_dim=2, backend="cpp")
    assert wide.fused
    torch.nn.init.normal_(f.attention.W_K.weight)
    torch.nn.init.normal_(f.attention.W_Q.weight)
    z0, z = torch.randn(g.num_nodes, 6, dtype=D), torch.randn(g.num_nodes, 6, dtype=D)
    f.set_initial(z0)
    values = dense_attention(f.attention, g, z).mean(1)
    torch.testing.assert_close(f(T0, z), dense_diffusion_rhs(f, g, z, values))


@pytest.mark.parametrize("separate", [True, False])
@pytest.mark.parametrize("backend", ["torch", "cpp"])
@pytest.mark.parametrize("cls", [BeltramiDiffusion, FrozenAttentionDiffusion])
def test_gradcheck_wrt_parameters_and_z(cls, backend, separate):
    # the fused cpp kernel applies one diffusivity itself, two after the kernel
    if backend not in available_backends():
        pytest.skip("no C++ compiler")
    g, f = _beltrami(cls, g=random_graph(n=6, m=14), dim=4, add_source=True, separate_diffusivity=separate,
                     backend=backend)
    params = list(f.parameters())

    def fn(z, *ps):
        f.set_initial(z)
        return f(T0, z * 1.5)

    z = torch.randn(6, 4, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (z, *params))


@pytest.mark.parametrize("norm", ["sym", "rw", "none"])
def test_laplacian_matches_dense_and_scipy(norm):
    g = random_graph(n=10, isolated=2)
    w = torch.rand(g.num_edges, dtype=D) + 0.1
    f = LaplacianDiffusion(g, 3, norm=norm, weights=w, alpha=0.7)
    a = dense(g, w)
    deg = a.sum(1)
    inv = torch.where(deg > 0, 1 / deg, torch.zeros_like(deg))
    op = {"sym": inv.sqrt()[:, None] * a * inv.sqrt()[None, :], "rw": inv[:, None] * a, "none": a}[norm]
    z = torch.randn(10, 3, dtype=D)
    torch.testing.assert_close(f(T0, z), 0.7 * (op @ z - z))
    np.testing.assert_allclose(f.to_scipy().toarray(), 0.7 * (op.numpy() - np.eye(10)), atol=1e-14)


def test_set_graph_rewires():
    g1, f = _beltrami()
    g2 = random_graph(seed=5)
    z = torch.randn(g1.num_nodes, 6, dtype=D)
    f.set_graph(g2)
    torch.testing.assert_close(f(T0, z), dense_diffusion_rhs(f, g2, z, dense_attention(f.attention, g2, z).mean(1)))


def test_bad_inputs():
    g = random_graph()
    with pytest.raises(ValueError, match="separate_diffusivity needs"):
        BeltramiDiffusion(g, 4, separate_diffusivity=True)
    with pytest.raises(TypeError, match="beltrami.Graph"):
        BeltramiDiffusion(g.edge_index, 4)
    with pytest.raises(ValueError, match="either in an EdgeAttention or as keywords"):
        BeltramiDiffusion(g, 4, attention=beltrami.functions.EdgeAttention(4), heads=2)
    f = LaplacianDiffusion(g, 3)
    with pytest.raises(ValueError, match="3 columns"):
        f.check_state(torch.randn(g.num_nodes, 4))
    with pytest.raises(ValueError, match="non-finite"):
        f.check_state(torch.full((g.num_nodes, 3), float("nan")))
    with pytest.raises(ValueError, match="unknown normalisation"):
        LaplacianDiffusion(g, 3, norm="left")


def test_repr():
    g, f = _beltrami()
    assert "BeltramiDiffusion" in repr(f) and "heads=2" in repr(f)
    assert repr(LaplacianDiffusion(g, 3)).startswith("LaplacianDiffusion(3, norm=sym")


@pytest.mark.parametrize("cls", [BeltramiDiffusion, FrozenAttentionDiffusion])
@pytest.mark.parametrize("loops", [False, True])  # with self-loops the frozen function folds its source
def test_detached_source_stops_only_the_source_gradient(cls, loops):
    """Same values; the gradient of z(0) loses exactly the source's share beta * G (its other uses, the
    frozen attention, keep theirs), and beta's gradient is unchanged."""
    g = random_graph()
    g = g.add_self_loops() if loops else g
    z0 = torch.randn(g.num_nodes, 6, dtype=D)
    z = torch.randn(g.num_nodes, 6, dtype=D)
    grads = {}
    for detach in (False, True):
        _, f = _beltrami(cls, g, add_source=True, detach_source=detach)
        start = z0.clone().requires_grad_()
        f.set_initial(start)
        out = f(T0, z)
        w = torch.linspace(-1, 1, out.numel(), dtype=D).view_as(out)
        (out * w).sum().backward()
        g0 = torch.zeros_like(z0) if start.grad is None else start.grad  # None: z(0) fed the source only
        grads[detach] = (out.detach(), g0, f.beta_train.grad.clone())
    torch.testing.assert_close(grads[True][0], grads[False][0])
    torch.testing.assert_close(grads[True][2], grads[False][2])
    torch.testing.assert_close(grads[False][1] - grads[True][1], 0.4 * w)
