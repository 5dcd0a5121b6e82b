"""The kernels, functions, solvers and training on a CUDA device (marked ``gpu``: CI has none).

Every device result is compared with the dense float64 reference computed on the CPU, so a kernel that is
right on the CPU and wrong on the GPU fails here. Run on a machine with a GPU:
``python -m pytest -m gpu tests/test_gpu.py``. ``BELTRAMI_TEST_DEVICE=cpu`` runs the same checks on the
CPU (a dry run of this module where no GPU is at hand).
"""
import os

import pytest
import torch

import beltrami
from beltrami.functions import BeltramiDiffusion, compile_function
from beltrami.solvers import solve
from beltrami.sparse import available_backends, edge_softmax, spmm
from beltrami.sparse.softmax import column_softmax

from tests.reference import (dense, dense_attention, dense_diffusion_rhs, dense_row_softmax, hub_graph,
                             random_graph)

DEVICE = os.environ.get("BELTRAMI_TEST_DEVICE", "cuda")
KIND = torch.device(DEVICE).type
OWN = {"cuda": "triton", "cpu": "cpp"}[KIND]  # our own kernels on this device type
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                 reason="no CUDA device")]
D = torch.float64
T0 = torch.tensor(0.0, dtype=D)


def _on(*tensors):
    """Leaf copies of CPU tensors on the device, with gradients."""
    return [t.detach().to(DEVICE).requires_grad_() for t in tensors]


@pytest.mark.parametrize("backend", list(available_backends(KIND)))
@pytest.mark.parametrize("heads", [None, 3])
def test_spmm_and_its_gradients_match_dense(backend, heads):
    g = random_graph()
    v = torch.randn((g.num_edges,) if heads is None else (g.num_edges, heads), dtype=D)
    x = torch.randn((g.num_nodes, 5) if heads is None else (g.num_nodes, heads, 5), dtype=D)
    w = torch.randn((g.num_nodes, 5) if heads is None else (g.num_nodes, heads, 5), dtype=D)
    vd, xd = _on(v, x)
    out = spmm(g.to(DEVICE), vd, xd, backend=backend, validate=True)
    (out * w.to(DEVICE)).sum().backward()
    vr, xr = v.clone().requires_grad_(), x.clone().requires_grad_()
    ref = dense(g, vr) @ xr if heads is None else torch.einsum("hij,jhd->ihd", dense(g, vr), xr)
    (ref * w).sum().backward()
    assert out.device.type == torch.device(DEVICE).type
    torch.testing.assert_close(out.cpu(), ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(vd.grad.cpu(), vr.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(xd.grad.cpu(), xr.grad, rtol=1e-12, atol=1e-12)


def test_edge_softmax_and_its_gradient_match_dense_with_empty_rows():
    g = random_graph(n=15, isolated=3)
    s = torch.randn(g.num_edges, 4, dtype=D) * 30  # large scores: the row maximum must be subtracted
    w = torch.randn(g.num_edges, 4, dtype=D)
    (sd,) = _on(s)
    out = edge_softmax(g.to(DEVICE), sd)
    (out * w.to(DEVICE)).sum().backward()
    sr = s.clone().requires_grad_()
    ref = dense_row_softmax(g, dense(g, sr)).T
    (ref * w).sum().backward()
    torch.testing.assert_close(out.detach().cpu(), ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sd.grad.cpu(), sr.grad, rtol=1e-10, atol=1e-12)


def test_column_softmax_and_its_two_gradients_match_dense_with_empty_columns():
    # columns (the paper presets' normalise_over="cols") take the op's scattered path: amax scatter, index_add
    g = random_graph(n=15, isolated=3)
    s = torch.randn(g.num_edges, 4, dtype=D) * 30
    w, v = torch.randn(g.num_edges, 4, dtype=D), torch.randn(g.num_edges, 4, dtype=D)
    results = []
    for device, fn in ((DEVICE, lambda s: column_softmax(s, g.col.to(DEVICE), g.num_nodes)),
                       ("cpu", lambda s: dense_row_softmax(g, dense(g, s), dim=-2).T)):
        sd = s.to(device).requires_grad_()
        out = fn(sd)
        (grad,) = torch.autograd.grad((out * w.to(device)).sum(), sd, create_graph=True)
        (grad2,) = torch.autograd.grad((grad * v.to(device)).sum(), sd)  # double backward
        results.append([t.detach().cpu() for t in (out, grad, grad2)])
    for got, ref in zip(*results):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["scaled_dot", "exp_product"])
def test_beltrami_rhs_on_device_matches_dense(kind):
    g = random_graph()
    torch.manual_seed(1)
    f = BeltramiDiffusion(g, 6, pos_dim=2, heads=2, attention_dim=4, kind=kind, add_source=True,
                          separate_diffusivity=True).double()
    with torch.no_grad():
        f.alpha_train.copy_(torch.tensor([0.3, -0.7]))
        f.beta_train.fill_(0.4)
    z0, z = torch.randn(g.num_nodes, 6, dtype=D), torch.randn(g.num_nodes, 6, dtype=D)
    f.set_initial(z0)
    ref = dense_diffusion_rhs(f, g, z, dense_attention(f.attention, g, z).mean(1))
    fd = f.to(DEVICE)
    fd.set_initial(z0.to(DEVICE))
    torch.testing.assert_close(fd(T0.to(DEVICE), z.to(DEVICE)).cpu(), ref.detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["script", "compile"])
def test_compiled_equals_eager_on_device(mode):
    torch.manual_seed(0)
    f = BeltramiDiffusion(random_graph(n=20, m=60).to(DEVICE), 6, pos_dim=2, heads=2, attention_dim=4,
                          add_source=True).double().to(DEVICE)
    z0, z = _on(torch.randn(20, 6, dtype=D), torch.randn(20, 6, dtype=D))

    def run(func):
        func.set_initial(z0)
        out = func(T0.to(DEVICE), z)
        return [out] + list(torch.autograd.grad(out.square().sum(), [z0, z] + list(f.parameters()),
                                                allow_unused=True))

    for a, b in zip(run(compile_function(f, mode)), run(f)):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scheme,kw", [("dopri5", dict(rtol=1e-9, atol=1e-11)),
                                       ("crank_nicolson", dict(step_size=0.1, krylov_tol=1e-12))])
def test_solve_on_device_matches_cpu_direct_and_adjoint(scheme, kw):
    """The CPU path is tied to closed forms and dense references elsewhere; the device must agree with it,
    and its adjoint with its direct gradients."""
    torch.manual_seed(0)
    g = random_graph(n=12, m=48, seed=1).symmetrize().add_self_loops()
    f = BeltramiDiffusion(g, 4, heads=2, attention_dim=4, add_source=True).double()
    z0 = torch.randn(12, 4, dtype=D)

    def grads(func, z, backprop):
        z = z.detach().requires_grad_()
        sol = solve(func, z, 1.0, scheme=scheme, backprop=backprop, **kw)
        inputs = [z] + list(func.parameters())
        g = torch.autograd.grad(sol.z.square().sum(), inputs, allow_unused=True)  # unused: the exp scales
        return [sol.z.detach().cpu()] + [torch.zeros_like(i) if x is None else x for i, x in zip(inputs, g)]

    cpu = grads(f, z0, "direct")
    fd = f.to(DEVICE)
    for backprop in ("direct", "adjoint"):
        for a, b in zip(grads(fd, z0.to(DEVICE), backprop), cpu):
            torch.testing.assert_close(a.cpu(), b.cpu(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("model", ["blend", "blend-knn"])
def test_fit_trains_on_device(model):
    """Cora's fast preset, 30 epochs on the device (BLEND-kNN rewires there): the model is the device's, and
    it learns (the majority class is 30% of Cora)."""
    res = beltrami.fit("cora", preset="fast", model=model, epochs=30, seeds=[0], device=DEVICE, progress=False)
    assert next(res.trained_model.parameters()).device.type == torch.device(DEVICE).type
    assert res.test_acc > 0.6, res.test_acc
    assert res.peak_memory_bytes > 0


def test_no_dense_n_by_n_on_300k_nodes_on_device():
    """The Beltrami function forward+backward on 300,000 nodes (3M edges): a dense n x n float32 matrix
    would take 360 GB; the device's peak allocation stays under 2 GB."""
    if not DEVICE.startswith("cuda"):
        pytest.skip("the CPU's peak memory is tested in tests/functions/test_compile.py")
    n = 300_000
    ei = torch.randint(n, (2, 1_500_000), generator=torch.Generator().manual_seed(0))
    g = beltrami.Graph.from_edge_index(ei, n).symmetrize().to(DEVICE)
    f = BeltramiDiffusion(g, 32, heads=4, attention_dim=32).to(DEVICE)
    z = torch.randn(n, 32, device=DEVICE, requires_grad=True)
    torch.cuda.reset_peak_memory_stats()
    f(torch.tensor(0.0, device=DEVICE), z).square().sum().backward()
    peak = torch.cuda.max_memory_allocated()
    assert peak < 2 * 2**30, f"peak {peak / 2**30:.2f} GiB"


@pytest.mark.skipif(OWN not in available_backends(KIND), reason="the fused kernel needs triton on CUDA, a C++ "
                    "compiler on the CPU")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", ["eager", "script", "compile"])
def test_fused_attention_on_device_matches_composed_on_cpu(dtype, mode):
    """Our own kernels (``"triton"`` on CUDA, ``"cpp"`` on the CPU): the fused kernel against the composed kernels in
    float64 on the CPU, output and every gradient; heads, head width and channels that are not powers of two,
    a hub whose row and column take several blocks of edges, an isolated node."""
    g = hub_graph(200, 3000, 100)
    torch.manual_seed(0)
    ref_f = BeltramiDiffusion(g, 67, pos_dim=3, heads=3, attention_dim=15, add_source=True).double()
    fused = BeltramiDiffusion(g, 67, pos_dim=3, heads=3, attention_dim=15, add_source=True, backend=OWN).double()
    fused.load_state_dict(ref_f.state_dict())
    with torch.no_grad():
        ref_f.alpha_train.fill_(0.4)
        fused.alpha_train.fill_(0.4)
    fused = fused.to(device=DEVICE, dtype=dtype)
    assert fused.fused
    z0, z = torch.randn(200, 67, dtype=D), torch.randn(200, 67, dtype=D)
    w = torch.randn(200, 67, dtype=D)

    def run(f, z0, z):
        z0, z = z0.clone().requires_grad_(), z.clone().requires_grad_()
        f.set_initial(z0)
        out = f(torch.zeros((), dtype=z.dtype, device=z.device), z)
        inputs = [z0, z] + [p for p in f.parameters() if p.requires_grad]
        grads = torch.autograd.grad((out * w.to(out)).sum(), inputs, allow_unused=True)
        return [out.detach()] + [torch.zeros_like(i) if gr is None else gr for i, gr in zip(inputs, grads)]

    ref = run(ref_f, z0, z)
    got = run(compile_function(fused, mode), z0.to(DEVICE, dtype), z.to(DEVICE, dtype))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a.cpu().double(), b, **tol)
