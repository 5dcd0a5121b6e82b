"""RNODE terms against direct autograd computations."""
import pytest
import torch

from beltrami.functions import BeltramiDiffusion
from beltrami.models import BLEND
from beltrami.solvers.regularization import Regularization, hutchinson_noise
from beltrami.solvers import solve
from beltrami.sparse import available_backends

from tests.reference import random_graph

D = torch.float64


def _func():
    torch.manual_seed(0)
    g = random_graph(n=8, m=24, seed=3).symmetrize().add_self_loops()
    return BeltramiDiffusion(g, 3, heads=1, attention_dim=2, add_source=True).double()


def test_kinetic_and_jacobian_match_explicit_euler_sums():
    f = _func()
    z0 = torch.randn(8, 3, dtype=D)
    reg = Regularization(kinetic=1.0, jacobian=1.0, seed=7)
    h, steps = 0.1, 5
    sol = solve(f, z0, h * steps, scheme="euler", step_size=h, regularization=reg)
    eps = hutchinson_noise(z0, reg)
    # reference: Euler by hand; Jacobian from torch.autograd.functional.jacobian (dense, 24 x 24)
    z, kin, jac = z0.clone(), 0.0, 0.0
    for _ in range(steps):
        fz = f(torch.tensor(0.0), z)
        kin += h * float((fz.detach() ** 2).sum()) / 8
        J = torch.autograd.functional.jacobian(lambda y: f(torch.tensor(0.0), y.view(8, 3)).reshape(-1), z.reshape(-1))
        v = eps.reshape(-1) @ J
        jac += h * float(v @ v) / 8
        z = z + h * fz.detach()
    torch.testing.assert_close(sol.z, z)
    r = sol.regularization
    assert abs(float(r["kinetic"].detach()) - kin) < 1e-10 and abs(float(r["jacobian"].detach()) - jac) < 1e-10
    assert abs(float(r["loss"].detach()) - (kin + jac)) < 1e-10


def test_hutchinson_is_unbiased_for_the_frobenius_norm():
    f = _func()
    z = torch.randn(8, 3, dtype=D)
    f.set_initial(z)
    J = torch.autograd.functional.jacobian(lambda y: f(torch.tensor(0.0), y.view(8, 3)).reshape(-1), z.reshape(-1))
    frob = float((J ** 2).sum())
    g = torch.Generator().manual_seed(0)
    est = []
    for _ in range(4000):
        eps = torch.randn(24, dtype=D, generator=g)
        est.append(float(((eps @ J) ** 2).sum()))
    assert abs(sum(est) / len(est) - frob) < 0.05 * frob


@pytest.mark.parametrize("backprop", ["direct", "adjoint"])
def test_regularisation_is_differentiable_in_both_modes(backprop):
    f = _func()
    z0 = torch.randn(8, 3, dtype=D, requires_grad=True)
    sol = solve(f, z0, 0.5, scheme="rk4", step_size=0.1, backprop=backprop,
                regularization=Regularization(kinetic=0.5, jacobian=0.5, seed=1))
    loss = sol.z.square().sum() + sol.regularization["loss"]
    grads = torch.autograd.grad(loss, [z0] + list(f.attention.W_K.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)
    if backprop == "adjoint":
        ref = solve(f, z0, 0.5, scheme="rk4", step_size=0.1,
                    regularization=Regularization(kinetic=0.5, jacobian=0.5, seed=1))
        ref_grads = torch.autograd.grad(ref.z.square().sum() + ref.regularization["loss"],
                                        [z0] + list(f.attention.W_K.parameters()))
        for a, b in zip(grads, ref_grads):
            assert float((a - b).abs().max()) < 1e-3 * max(1.0, float(b.abs().max()))


def test_regularisation_errors():
    f = _func()
    with pytest.raises(ValueError, match=">= 0"):
        Regularization(kinetic=-1.0)
    with pytest.raises(ValueError, match="explicit or adaptive"):
        solve(f, torch.randn(8, 3, dtype=D), 1.0, scheme="implicit_euler", step_size=0.1,
              regularization=Regularization(kinetic=1.0))


@pytest.mark.skipif("cpp" not in available_backends(), reason="no C++ compiler")
def test_jacobian_penalty_keeps_blend_off_the_first_order_fused_kernel():
    g = random_graph(n=8, m=24, seed=3).symmetrize().add_self_loops()
    x = torch.randn(8, 5)
    for reg, fused in ((None, True), (Regularization(kinetic=0.5), True), (Regularization(jacobian=0.5), False)):
        torch.manual_seed(0)
        model = BLEND(5, 2, g, frozen=False, heads=2, attention_dim=4, hidden_features=6, scheme="rk4",
                      step_size=0.5, time=1.0, regularization=reg, backend="cpp")
        assert model.function.fused == fused
        out = model(x)
        loss = out.square().sum() + (model.last_solution.regularization["loss"] if reg else 0.0)
        loss.backward()  # with the jacobian penalty this needs second derivatives of the function
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
