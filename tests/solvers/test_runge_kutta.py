"""The adaptive Runge-Kutta engine against torchdiffeq (same steps, same evaluations, same states) and its
gradients against an exact reference (a tightly solved problem)."""
import pytest
import torch
import torchdiffeq
from torch import nn

from beltrami.solvers import SolverError, solve
from beltrami.solvers.runge_kutta import DOPRI5, TABLEAUS, dense_weights, integrate_adaptive
from beltrami.solvers.solution import counted

TS = [0.0, 0.3, 1.7, 2.5]


class Nonlinear(nn.Module):
    """``f(t, z) = tanh(z A) - 0.3 z + sin(t)``: nonlinear, time-dependent, with a parameter."""

    def __init__(self, dim: int = 12, dtype=torch.float64) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.A = nn.Parameter(torch.randn(dim, dim, generator=g, dtype=dtype) / 3)

    def forward(self, t, z):
        return torch.tanh(z @ self.A) - 0.3 * z + torch.sin(t)


def _pair(method, dtype, rtol=1e-6, atol=1e-8):
    f = Nonlinear(dtype=dtype)
    z0 = torch.randn(5, 12, dtype=dtype, generator=torch.Generator().manual_seed(1)).requires_grad_()
    ours, theirs = counted(f, method, adaptive=True), counted(f, method, adaptive=True)
    zs = integrate_adaptive(ours, z0, TS, TABLEAUS[method], rtol, atol, 10_000, method)[1:]
    ref = torchdiffeq.odeint(theirs, z0, torch.tensor(TS, dtype=dtype), method=method, rtol=rtol, atol=atol)[1:]
    return f, z0, zs, ref, ours, theirs


@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
@pytest.mark.parametrize("dtype, rtol, tol", [(torch.float64, 1e-6, 1e-12), (torch.float32, 1e-4, 1e-5)])
def test_same_steps_and_states_as_torchdiffeq(method, dtype, rtol, tol):
    """In float32 the tolerance is kept well above rounding: nearer to it, the error estimate is rounding
    noise, and the two codes' different (equally valid) roundings can accept different steps."""
    _, _, zs, ref, ours, theirs = _pair(method, dtype, rtol=rtol, atol=rtol / 100)
    assert (ours.forward_calls, ours.accepted, ours.rejected) == (theirs.forward_calls, theirs.accepted,
                                                                   theirs.rejected)
    assert ours.rejected > 0 or method == "dopri5"  # bosh3 rejects steps here: that path is compared too
    assert float((zs - ref).detach().abs().max()) <= tol * float(ref.detach().abs().max())


@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
def test_gradients_close_to_the_exact_ones(method):
    """Both gradients are within the solver's tolerance of the exact one; ours ignores how the first step was
    chosen (torchdiffeq differentiates through it), so it is the closer of the two."""
    f, z0, zs, ref, _, _ = _pair(method, torch.float64)
    exact = torchdiffeq.odeint(f, z0, torch.tensor(TS, dtype=torch.float64), rtol=1e-13, atol=1e-13)[1:]
    grads = [torch.autograd.grad(y.square().sum(), [z0, f.A]) for y in (zs, ref, exact)]
    err_ours = max(float((a - b).abs().max()) for a, b in zip(grads[0], grads[2]))
    err_theirs = max(float((a - b).abs().max()) for a, b in zip(grads[1], grads[2]))
    scale = max(float(g.abs().max()) for g in grads[2])
    assert err_ours <= 1e-3 * scale
    assert err_ours <= err_theirs


def test_dense_output_ends_at_the_step_and_is_the_quartic():
    """At x = 1 the interpolant is the step's solution; at x = 0 the start; its weights sum like b."""
    w1, w0 = dense_weights(DOPRI5, 1.0), dense_weights(DOPRI5, 0.0)
    assert all(abs(a - b) < 1e-15 for a, b in zip(w1, DOPRI5.b))
    assert all(w == 0.0 for w in w0)
    # a linear ODE y' = y over one step: the quartic matches exp to the method's dense-output accuracy
    h, x = 0.1, 0.37
    y0 = torch.ones(1, dtype=torch.float64)
    stages = [y0.clone()]
    for c, a in zip(DOPRI5.c, DOPRI5.a):
        stages.append(y0 + h * sum(ai * k for ai, k in zip(a, stages)))
    y = y0 + h * sum(w * k for w, k in zip(dense_weights(DOPRI5, x), stages))
    assert abs(float(y) - float(torch.exp(torch.tensor(x * h)))) < 1e-9


def test_solve_uses_it_for_direct_backprop_and_counts():
    f = Nonlinear()
    z0 = torch.randn(5, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    sol = solve(f, z0, 2.5, scheme="dopri5", rtol=1e-6, atol=1e-8, t_eval=[0.3, 1.7])
    theirs = counted(f, "dopri5", adaptive=True)
    ref = torchdiffeq.odeint(theirs, z0, torch.tensor(TS, dtype=torch.float64), rtol=1e-6, atol=1e-8)
    assert sol.stats["nfe_forward"] == theirs.forward_calls
    assert sol.stats["steps"] == theirs.accepted + theirs.rejected
    torch.testing.assert_close(sol.zs, ref[1:], rtol=1e-10, atol=1e-12)


def test_max_steps_and_underflow_raise():
    f = Nonlinear()
    z0 = torch.randn(5, 12, dtype=torch.float64)
    with pytest.raises(SolverError, match="more than max_steps=3"):
        solve(f, z0, 50.0, scheme="dopri5", rtol=1e-10, atol=1e-10, max_steps=3)

    class Blowup(nn.Module):
        def forward(self, t, z):
            return z * z * 1e3

    with pytest.raises(SolverError, match="underflow|non-finite"):
        solve(Blowup(), torch.ones(3, dtype=torch.float64), 10.0, scheme="dopri5")
