"""``solve(save_fn=...)``: what it keeps of each state equals the function applied to the states afterwards,
on every path (the affine solver, the Runge-Kutta loop, torchdiffeq's fixed steps, implicit schemes), with
and without autograd; the states are streamed (one buffer, reused) where the solver allows it."""
import pytest
import torch

from beltrami.functions import FrozenAttentionDiffusion
from beltrami.solvers import solve

from tests.reference import random_graph

D = torch.float64
TIMES = [0.3, 0.9, 1.4]


def _function():
    g = random_graph(n=30, m=120, seed=5).symmetrize().add_self_loops()
    return FrozenAttentionDiffusion(g, 5, heads=1, attention_dim=4, init="xavier").double()


def _weights() -> torch.Tensor:
    return torch.randn(5, 3, dtype=D, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("scheme, affine, kw", [
    ("dopri5", True, {}), ("bosh3", False, {}), ("rk4", False, {"step_size": 0.1}),
    ("implicit_euler", False, {"step_size": 0.1})])
@pytest.mark.parametrize("grad", [False, True])
def test_saved_values_equal_the_function_of_the_states(scheme, affine, kw, grad):
    f = _function()
    if not affine:
        f.affine_form = lambda: None
    z0 = torch.randn(30, 5, dtype=D, generator=torch.Generator().manual_seed(0))
    w = _weights()
    seen = []

    def keep(z):
        seen.append(z.data_ptr())
        return (z @ w).relu()

    with torch.set_grad_enabled(grad):
        plain = solve(f, z0, 1.4, scheme=scheme, t_eval=TIMES, **kw)
        saved = solve(f, z0, 1.4, scheme=scheme, t_eval=TIMES, save_fn=keep, **kw)
    assert saved.zs.shape == (3, 30, 3)
    torch.testing.assert_close(saved.zs, (plain.zs @ w).relu(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(saved.z, plain.z, rtol=1e-12, atol=1e-12)
    assert saved.stats == plain.stats
    if scheme in ("dopri5", "bosh3") and not grad:  # streamed: every state lands in one buffer
        assert len(set(seen[1:])) == 1


def test_gradients_flow_through_save_fn():
    f = _function()
    z0 = torch.randn(30, 5, dtype=D, generator=torch.Generator().manual_seed(0), requires_grad=True)
    w = _weights()
    saved = solve(f, z0, 1.4, t_eval=TIMES, save_fn=lambda z: z @ w)
    (g_saved,) = torch.autograd.grad(saved.zs.square().sum(), z0)
    plain = solve(f, z0, 1.4, t_eval=TIMES)
    (g_plain,) = torch.autograd.grad((plain.zs @ w).square().sum(), z0)
    torch.testing.assert_close(g_saved, g_plain, rtol=1e-12, atol=1e-12)
