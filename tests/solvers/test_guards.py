"""What ``solve`` refuses before integrating (non-numbers, non-finite or non-positive times, steps and
tolerances), and the guard of fixed explicit steps: an unstable step raises instead of returning a state
of size 1e7 (which explicit Euler did before)."""
import math

import pytest
import torch

from beltrami.functions import FrozenAttentionDiffusion, LaplacianDiffusion
from beltrami.solvers import SolverError, solve

from tests.reference import random_graph

D = torch.float64


def _laplacian(norm="sym", alpha=1.0):
    return LaplacianDiffusion(random_graph(n=30, m=120, seed=2).symmetrize(), 4, norm=norm, alpha=alpha)


def _z0():
    return torch.randn(30, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kw, error, match", [
    (dict(scheme="euler", step_size=float("nan")), ValueError, r"step_size must be a finite number in \(0, inf\)"),
    (dict(scheme="euler", step_size=float("inf")), ValueError, "step_size must be a finite number"),
    (dict(scheme="euler", step_size=-0.1), ValueError, r"step_size must be a finite number in \(0, inf\), got -0.1"),
    (dict(scheme="euler", step_size="0.1"), TypeError, r"step_size must be a number, got '0.1' \(str\)"),
    (dict(scheme="euler", step_size=0.1, rtol=1e-3), ValueError, "adaptive schemes only"),
    (dict(rtol=-1.0, atol=-1.0), ValueError, r"rtol must be a finite number in \[0, inf\), got -1.0"),
    (dict(atol=float("nan")), ValueError, "atol must be a finite number"),
    (dict(rtol=0.0, atol=0.0), ValueError, "both 0"),
    (dict(max_steps=0), ValueError, "max_steps must be >= 1"),
    (dict(max_steps=10.5), TypeError, "max_steps must be an int"),
    (dict(t_eval=[0.5, float("nan")]), ValueError, "each time of t_eval must be a finite number"),
    # repeated or unsorted times were merged and sorted: fewer states, or another order, than asked for
    (dict(t_eval=[0.2, 0.5, 0.5, 1.0]), ValueError, r"strictly increasing: t_eval\[2\] = 0.5 follows"),
    (dict(t_eval=[0.5, 0.2]), ValueError, r"strictly increasing: t_eval\[1\] = 0.2 follows t_eval\[0\] = 0.5"),
    (dict(t_eval=[0.5, 1.5]), ValueError, r"t_eval must lie in \(t0, t1\]"),
])
def test_bad_solver_options(kw, error, match):
    with pytest.raises(error, match=match):
        solve(_laplacian(), _z0(), 1.0, **kw)


def test_states_come_back_one_per_requested_time():
    """t1 is appended when not requested (the last state), never twice."""
    assert solve(_laplacian(), _z0(), 1.0, t_eval=[0.25, 0.5]).zs.shape[0] == 3
    assert solve(_laplacian(), _z0(), 1.0, t_eval=[0.25, 1.0]).zs.shape[0] == 2


@pytest.mark.parametrize("t1, match", [(float("inf"), "t1 must be a finite number"),
                                       (float("nan"), "t1 must be a finite number"),
                                       ("1", "t1 must be a number")])
def test_bad_end_time(t1, match):
    with pytest.raises((ValueError, TypeError), match=match):
        solve(_laplacian(), _z0(), t1)


@pytest.mark.parametrize("scheme, step", [("euler", 5.0), ("rk4", 4.0)])
def test_unstable_explicit_step_raises(scheme, step):
    """Eigenvalues of A - I lie in [-2, 0]: Euler is stable for steps up to 1, rk4 up to about 1.39."""
    with pytest.raises(SolverError, match=f"{scheme}: max.z. reached .* cannot take it past .*smaller step_size "
                                          f"than {step:g}"):
        solve(_laplacian(), _z0(), 60.0, scheme=scheme, step_size=step)


@pytest.mark.parametrize("scheme, step", [("euler", 1.0), ("rk4", 1.0)])
def test_stable_explicit_steps_pass(scheme, step):
    z = solve(_laplacian(), _z0(), 60.0, scheme=scheme, step_size=step).z
    assert float(z.abs().max()) <= float(_z0().norm(dim=0).max())


def test_non_finite_state_raises_without_a_known_bound():
    f = _laplacian(norm="none")  # raw weights: no bound is known, yet an overflow is still caught
    with pytest.raises(SolverError, match="euler: non-finite state at t=.*unstable at this step size"):
        solve(f, _z0(), 400.0, scheme="euler", step_size=4.0)


@pytest.mark.parametrize("over", ["rows", "cols"])
def test_attention_bound_holds_for_the_exact_flow(over):
    """The bound is one the flow really respects: dopri5 at tight tolerances stays under it (and rk4 at a
    stable step passes the guard), for both orientations of the attention and a source term."""
    g = random_graph(n=30, m=120, seed=4).symmetrize().add_self_loops()
    f = FrozenAttentionDiffusion(g, 4, heads=2, attention_dim=4, normalise_over=over, add_source=True,
                                 init="xavier").double()
    with torch.no_grad():
        f.beta_train.fill_(0.5)
        f.alpha_train.fill_(3.0)
    z0 = _z0().double()
    with torch.no_grad():
        sol = solve(f, z0, 4.0, rtol=1e-9, atol=1e-11, t_eval=[1.0, 2.0, 3.0])
    for t, z in zip(sol.ts.tolist(), sol.zs):
        assert float(z.abs().max()) <= f.state_bound(z0, t) + 1e-9
    solve(f, z0, 4.0, scheme="rk4", step_size=0.5)
    assert math.isfinite(f.state_bound(z0, 4.0))


def test_negative_diffusivity_has_no_bound():
    assert _laplacian(alpha=-1.0).state_bound(_z0(), 1.0) is None
    assert _laplacian(norm="rw").state_bound(_z0(), 1.0) == pytest.approx(float(_z0().abs().max()))
