"""Implicit schemes on functions without ``linear_operator`` (matrix-free Newton-Krylov): a user-written heat
equation against scipy's ``expm_multiply`` (observed orders 1 and 2), a nonlinear ODE against a tight dopri5
solve, and direct, adjoint and finite-difference gradients agreeing."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import expm_multiply

from beltrami.solvers import SolverError, solve

from tests.reference import random_graph

D = torch.float64


class UserHeat(torch.nn.Module):
    """dz/dt = -(D - A) z on a graph, written as a user would: torch.sparse.mm (no forward-mode rule, so the
    solver's Jacobian products take the two-reverse-pass route)."""

    def __init__(self, n: int, edges: torch.Tensor) -> None:
        super().__init__()
        a = torch.sparse_coo_tensor(edges, torch.ones(edges.shape[1], dtype=D), (n, n),
                                    check_invariants=True).coalesce()
        self.adjacency = a
        self.degree = torch.sparse.sum(a, 1).to_dense()[:, None]

    def forward(self, t, z):
        return torch.sparse.mm(self.adjacency, z) - self.degree * z


class Nonlinear(torch.nn.Module):
    """dz/dt = tanh(z W^T + b) - z: channels coupled, so the Jacobian is not one block per column."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim).double()

    def forward(self, t, z):
        return torch.tanh(self.lin(z)) - z * (1.0 + 0.5 * torch.cos(t))


@pytest.fixture(scope="module")
def heat():
    g = random_graph(n=30, m=120, seed=4).symmetrize()
    edges = g.edge_index
    f = UserHeat(30, edges)
    a = sp.coo_matrix((np.ones(edges.shape[1]), edges.numpy()), shape=(30, 30)).tocsr()
    laplacian = sp.diags(np.asarray(a.sum(1)).ravel()) - a
    z0 = torch.randn(30, 3, dtype=D, generator=torch.Generator().manual_seed(1))
    return f, z0, expm_multiply(-laplacian, z0.numpy())


@pytest.mark.parametrize("scheme, order", [("implicit_euler", 1), ("crank_nicolson", 2)])
def test_user_heat_equation_observed_order(heat, scheme, order):
    f, z0, exact = heat
    assert not hasattr(f, "linear_operator")
    errs = []
    for h in (0.1, 0.05, 0.025):
        sol = solve(f, z0, 1.0, scheme=scheme, step_size=h, krylov_tol=1e-12, newton_tol=1e-12)
        errs.append(float(np.abs(sol.z.numpy() - exact).max()))
    observed = [math.log2(a / b) for a, b in zip(errs[:-1], errs[1:])]
    assert all(abs(o - order) < 0.2 for o in observed), (errs, observed)
    # linear f: Newton takes one correction per step, then confirms
    assert sol.stats["newton_iterations"] == sol.stats["steps"]


@pytest.mark.parametrize("scheme, order", [("implicit_euler", 1), ("crank_nicolson", 2)])
def test_nonlinear_observed_order(scheme, order):
    torch.manual_seed(0)
    f = Nonlinear(4)
    z0 = torch.randn(6, 4, dtype=D)
    with torch.no_grad():
        ref = solve(f, z0, 1.0, scheme="dopri5", rtol=1e-12, atol=1e-12).z
        errs = [float((solve(f, z0, 1.0, scheme=scheme, step_size=h).z - ref).abs().max()) for h in (0.1, 0.05, 0.025)]
    observed = [math.log2(a / b) for a, b in zip(errs[:-1], errs[1:])]
    assert all(abs(o - order) < 0.2 for o in observed), (errs, observed)


@pytest.mark.parametrize("scheme", ["implicit_euler", "crank_nicolson"])
def test_nonlinear_direct_adjoint_and_finite_differences_agree(scheme):
    torch.manual_seed(0)
    f = Nonlinear(4)
    z0 = torch.randn(6, 4, dtype=D, requires_grad=True)
    kw = dict(scheme=scheme, step_size=0.25, newton_tol=1e-13, krylov_tol=1e-13)
    targets = [z0, *f.parameters()]
    direct = torch.autograd.grad(solve(f, z0, 1.0, **kw).z.square().sum(), targets)
    sol = solve(f, z0, 1.0, backprop="adjoint", **kw)
    adjoint = torch.autograd.grad(sol.z.square().sum(), targets)
    for a, b in zip(direct, adjoint):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    assert sol.stats["adjoint_steps"] == 4 and sol.stats["adjoint_linear_iterations"] > 0
    w, eps = f.lin.weight, 1e-6
    with torch.no_grad():
        w[1, 2] += eps
        plus = solve(f, z0, 1.0, **kw).z.square().sum()
        w[1, 2] -= 2 * eps
        minus = solve(f, z0, 1.0, **kw).z.square().sum()
        w[1, 2] += eps
    assert abs(float(adjoint[1][1, 2]) - float(plus - minus) / (2 * eps)) < 1e-6


def test_heat_adjoint_through_reverse_products(heat):
    """The fallback Jacobian products (no forward rule) give the same gradient as the closed form."""
    f, z0, _ = heat
    z = z0.clone().requires_grad_()
    sol = solve(f, z, 1.0, scheme="implicit_euler", step_size=0.5, backprop="adjoint", krylov_tol=1e-12)
    (grad,) = torch.autograd.grad(sol.z.sum(), z)
    # two backward Euler steps of the symmetric operator: grad = (I + h L)^{-2} 1
    lap = -torch.stack([f(None, e) for e in torch.eye(30, dtype=D)[:, :, None]]).squeeze(-1)
    m = torch.eye(30, dtype=D) + 0.5 * lap
    expected = torch.linalg.solve(m, torch.linalg.solve(m, torch.ones(30, 3, dtype=D)))
    torch.testing.assert_close(grad, expected, rtol=1e-8, atol=1e-10)


def test_newton_failure_is_a_clear_error():
    f = Nonlinear(4)
    z0 = torch.randn(6, 4, dtype=D)
    with pytest.raises(SolverError, match="Newton did not converge in 1 iterations"):
        solve(f, z0, 1.0, scheme="implicit_euler", step_size=1.0, newton_max_iter=1, newton_tol=1e-14)
