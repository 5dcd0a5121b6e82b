"""Direct vs adjoint gradients, gradcheck, NFE counts, stability and errors."""
import pytest
import torch

from beltrami.functions import BeltramiDiffusion, FrozenAttentionDiffusion, LaplacianDiffusion
from beltrami.solvers import SCHEMES, SolverError, bicgstab, cg, solve

from tests.reference import random_graph

D = torch.float64
KW = {"euler": dict(step_size=0.1), "rk4": dict(step_size=0.25), "dopri5": dict(rtol=1e-9, atol=1e-11),
      "bosh3": dict(rtol=1e-9, atol=1e-11), "implicit_euler": dict(step_size=0.1),
      "crank_nicolson": dict(step_size=0.1)}


def _model(cls=FrozenAttentionDiffusion, n=12):
    torch.manual_seed(0)
    g = random_graph(n=n, m=4 * n, seed=1).symmetrize().add_self_loops()
    f = cls(g, 4, heads=2, attention_dim=4, add_source=True).double()
    with torch.no_grad():
        f.beta_train.fill_(0.7)  # beta starts at 0: give the source term a weight, so that its path is tested
    return f


def _grads(f, z0, scheme, backprop, **extra):
    sol = solve(f, z0, 1.0, scheme=scheme, backprop=backprop, **KW[scheme], **extra)
    loss = (sol.z ** 2).sum()
    inputs = [z0] + list(f.parameters())
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)  # exp_kernel's scales are unused here
    return [torch.zeros_like(i) if g is None else g for i, g in zip(inputs, grads)], sol


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("cls", [FrozenAttentionDiffusion, BeltramiDiffusion])
def test_adjoint_matches_direct(scheme, cls):
    f = _model(cls)
    z0 = torch.randn(12, 4, dtype=D, requires_grad=True)
    direct, _ = _grads(f, z0, scheme, "direct")
    adjoint, sol = _grads(f, z0, scheme, "adjoint", krylov_tol=1e-12)
    # fixed-step explicit schemes: the continuous adjoint differs from the discrete gradient by the
    # discretisation error of the backward solve; implicit: the discrete adjoint is exact.
    # adaptive: the backward solve's own error at rtol 1e-9, larger for the third-order bosh3 (2e-6 seen)
    tol = {"euler": 0.15, "rk4": 1e-3, "bosh3": 1e-5}.get(scheme, 1e-6)  # euler: first order, h = 0.1
    for d, a in zip(direct, adjoint):
        assert float((d - a).abs().max()) <= tol * max(1.0, float(d.abs().max())), scheme
    assert sol.stats["nfe_backward"] > 0


@pytest.mark.parametrize("scheme", ["rk4", "implicit_euler", "crank_nicolson", "dopri5"])
@pytest.mark.parametrize("backprop", ["direct", "adjoint"])
def test_gradcheck(scheme, backprop):
    f = _model(n=6)
    kw = dict(KW[scheme])
    if backprop == "adjoint" and scheme == "rk4":
        kw["step_size"] = 0.05
    fn = lambda z0: solve(f, z0, 0.5, scheme=scheme, backprop=backprop, krylov_tol=1e-13, **kw).z  # noqa: E731
    z0 = torch.randn(6, 4, dtype=D, requires_grad=True)
    if backprop == "adjoint" and not SCHEMES[scheme].implicit:
        # the continuous adjoint is exact only up to the backward solve's error
        assert torch.autograd.gradcheck(fn, (z0,), atol=1e-4, rtol=1e-3)
    else:
        assert torch.autograd.gradcheck(fn, (z0,))


@pytest.mark.parametrize("scheme, stages", [("euler", 1), ("rk4", 4)])
def test_nfe_is_stages_times_steps(scheme, stages):
    f = _model()
    z0 = torch.randn(12, 4, dtype=D, requires_grad=True)
    sol = solve(f, z0, 1.0, scheme=scheme, step_size=0.1)
    assert sol.stats["steps"] == 10 and sol.stats["nfe_forward"] == stages * 10
    (sol.z.sum()).backward()
    assert sol.stats["nfe_backward"] == stages * 10  # one backward pass through every evaluation
    again = solve(f, z0, 1.0, scheme=scheme, step_size=0.3)  # per call, never cumulative
    assert again.stats["steps"] == 4 and again.stats["nfe_forward"] == stages * 4


def test_adaptive_nfe_counts_accepted_and_rejected():
    f = _model()
    sol = solve(f, torch.randn(12, 4, dtype=D), 1.0, scheme="dopri5", rtol=1e-8, atol=1e-10)
    s = sol.stats
    # dopri5: 2 evaluations to choose the first step, then 6 per attempted step (FSAL)
    assert s["nfe_forward"] == 2 + 6 * s["steps"]
    assert s["steps"] >= s["rejected_steps"] >= 0


def test_implicit_stable_where_explicit_blows_up():
    g = random_graph(n=30, m=120, seed=4).symmetrize()
    f = LaplacianDiffusion(g, 3, norm="sym", alpha=50.0).float()  # eigenvalues of the generator down to -100
    z0 = torch.randn(30, 3)
    with pytest.raises(SolverError, match=r"euler: non-finite state at t=.*step 0\.2"):
        solve(f, z0, 40.0, scheme="euler", step_size=0.2)
    for scheme in ("implicit_euler", "crank_nicolson"):
        z = solve(f, z0, 40.0, scheme=scheme, step_size=0.2).z
        assert torch.isfinite(z).all() and float(z.abs().max()) <= float(z0.abs().max()) + 1e-4
    with pytest.raises(SolverError, match="dopri5: more than max_steps=50"):
        solve(f, z0, 40.0, scheme="dopri5", rtol=1e-8, atol=1e-8, max_steps=50)


def test_krylov_against_scipy():
    import numpy as np
    import scipy.sparse.linalg as sla

    g = random_graph(n=50, m=200, seed=7).symmetrize()
    f = LaplacianDiffusion(g, 1, norm="sym")
    m = (np.eye(50) - 0.7 * f.to_scipy().toarray())
    b = torch.randn(50, 5, dtype=D)
    ref = np.linalg.solve(m, b.numpy())
    mv = lambda v: torch.from_numpy(m) @ v  # noqa: E731
    res = cg(mv, b, tol=1e-12)
    assert res.converged and np.abs(res.x.numpy() - ref).max() < 1e-9
    nonsym = m + 0.1 * np.triu(np.random.RandomState(0).rand(50, 50), 1)
    ref2 = np.stack([sla.gmres(nonsym, b[:, k].numpy(), rtol=1e-12, atol=0)[0] for k in range(5)], 1)
    res2 = bicgstab(lambda v: torch.from_numpy(nonsym) @ v, b, tol=1e-12)
    assert res2.converged and np.abs(res2.x.numpy() - ref2).max() < 1e-8


def test_adjoint_memory_does_not_grow_with_steps():
    """Peak memory of an adjoint rk4 solve (forward + backward) at 10x the steps stays within 1.5x;
    direct backprop grows with the steps."""
    import tracemalloc  # noqa: F401  (torch CPU allocations are not traced: measure the autograd graph instead)

    f = _model(n=200)
    z0 = torch.randn(200, 4, dtype=D, requires_grad=True)

    def saved_bytes(backprop, h):
        total = [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            sol = solve(f, z0, 1.0, scheme="rk4", step_size=h, backprop=backprop)
        sol.z.sum().backward()
        return total[0]

    a10, a100 = saved_bytes("adjoint", 0.1), saved_bytes("adjoint", 0.01)
    d10, d100 = saved_bytes("direct", 0.1), saved_bytes("direct", 0.01)
    assert a100 <= 1.5 * a10
    assert d100 >= 5 * d10


def test_clear_errors():
    f = _model()
    z0 = torch.randn(12, 4, dtype=D)
    with pytest.raises(ValueError, match="unknown scheme 'rk5'.*dopri5"):
        solve(f, z0, 1.0, scheme="rk5")
    with pytest.raises(ValueError, match="needs step_size"):
        solve(f, z0, 1.0, scheme="rk4")
    with pytest.raises(ValueError, match="unknown solve option.*'stepsize'"):
        solve(f, z0, 1.0, scheme="rk4", stepsize=0.1)
    with pytest.raises(ValueError, match="unknown backprop mode 'reverse'"):
        solve(f, z0, 1.0, backprop="reverse")
    with pytest.raises(ValueError, match="t1 must be greater"):
        solve(f, z0, 0.0)
    with pytest.raises(ValueError, match="z0 holds 1 non-finite"):
        bad = z0.clone()
        bad[0, 0] = float("inf")
        solve(f, bad, 1.0)
    with pytest.raises(ValueError, match="adaptive"):
        solve(f, z0, 1.0, scheme="dopri5", step_size=0.1)
    with pytest.raises(SolverError, match="exceed max_steps"):
        solve(f, z0, 1.0, scheme="euler", step_size=0.001, max_steps=100)
    with pytest.raises(SolverError, match="did not converge"):
        solve(f, z0, 1.0, scheme="implicit_euler", step_size=0.5, krylov_max_iter=1, krylov_tol=1e-14)
