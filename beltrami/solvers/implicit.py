"""Implicit theta schemes: backward Euler (theta = 1, order 1) and Crank-Nicolson (theta = 1/2, order 2).

A function with ``linear_operator(t, z)`` (the graph diffusions here) gives a step from ``z_n`` to
``z_{n+1}`` its affine form at ``z_n``, ``f(z) = L z + c`` (exact for linear diffusion and frozen attention; for the time-dependent
Beltrami flow the attention is evaluated at the start of the step, a *linearly implicit* scheme) and solves

    (I - h theta L) z_{n+1} = z_n + h (1 - theta) L z_n + h c

with a batched Krylov method (CG when ``L`` is symmetric, else BiCGStab), warm-started at ``z_n``.
For linear functions the orders are 1 and 2; for the time-dependent Beltrami flow the lagged attention
makes both first order (tested), while keeping the unconditional stability.
The matrix is strictly diagonally dominant for the row-stochastic diffusion operators, so the solve
converges in a few iterations and the scheme stays stable at any step size.

Backprop: ``direct`` differentiates through the Krylov iterations; ``adjoint`` uses
:class:`~beltrami.solvers.adjoint.LinearSolve`, which solves the transposed system in backward and keeps only
each step's solution (memory O(steps N D), independent of the Krylov iterations).

Any other function (a user's ``nn.Module``) is stepped by matrix-free Newton-Krylov
(:mod:`~beltrami.solvers.newton`): the fully implicit scheme, orders 1 and 2 for nonlinear f too.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from .interfaces import LinearOperator
from .adjoint import LinearSolve
from .base import Scheme, register
from .krylov import KRYLOV, solve_or_raise
from .newton import JacobianProducts, NewtonSettings, ThetaStep, newton_step
from .solution import CountedFunction, SolverError, _CountBackward


class Theta(Scheme):
    implicit = True
    theta: float


@register
class ImplicitEuler(Theta):
    name, order, theta = "implicit_euler", 1, 1.0


@register
class CrankNicolson(Theta):
    name, order, theta = "crank_nicolson", 2, 0.5


def step_grid(ts: List[float], step_size: float) -> List[float]:
    """Times from ``ts[0]`` to ``ts[-1]`` in steps of at most ``step_size`` that hit every ``ts`` exactly."""
    grid = [ts[0]]
    for a, b in zip(ts[:-1], ts[1:]):
        n = max(1, math.ceil((b - a) / step_size - 1e-9))
        grid += [a + (b - a) * k / n for k in range(1, n + 1)]
    return grid


def _operator(counter: CountedFunction, t: Tensor, z: Tensor) -> LinearOperator:
    func = counter.func
    counter.forward_calls += 1  # building the operator evaluates the attention (or nothing: still one unit)
    op = func.linear_operator(t, z)

    def counted(v: Tensor, tensors) -> Tensor:
        counter.forward_calls += 1
        out = op.apply(v, tensors)
        if torch.is_grad_enabled() and out.requires_grad:
            out = _CountBackward.apply(out, counter)
        return out

    return op._replace(apply=counted)


def integrate_theta(scheme: Theta, counter: CountedFunction, z0: Tensor, ts: List[float], step_size: float,
                    adjoint: bool, settings: NewtonSettings, max_steps: int,
                    stats: Dict[str, int]) -> Tuple[Tensor, List[Tensor]]:
    """Integrate over ``ts`` (requested times, ascending); returns the final state and the states at ``ts``.
    ``settings``: the Krylov choice and tolerances (and Newton's, for functions without a linear operator)."""
    grid = step_grid(ts, step_size)
    if len(grid) - 1 > max_steps:
        raise SolverError(f"{scheme.name}: {len(grid) - 1} steps of size <= {step_size} exceed max_steps={max_steps}")
    params = tuple(p for p in counter.func.parameters() if p.requires_grad)
    linear = hasattr(counter.func, "linear_operator")
    if not linear:
        stats.setdefault("newton_iterations", 0)
        products = JacobianProducts(counter)
    z = z0
    out = [z0]
    want = iter(ts[1:])
    next_t = next(want, None)
    for t_a, t_b in zip(grid[:-1], grid[1:]):
        counter.callback_step(t_a, z, t_b - t_a)
        if linear:
            z = _linear_step(scheme, counter, z, t_a, t_b, adjoint, settings, params, stats)
        else:
            step = ThetaStep(counter, products, t_a, t_b, scheme.theta, _newton_krylov(settings), stats)
            z = newton_step(step, z, adjoint, params)
        if not bool(torch.isfinite(z).all()):
            raise SolverError(f"{scheme.name}: non-finite state at t={t_b:.6g} after a step of size {t_b - t_a:.3g}")
        if next_t is not None and abs(t_b - next_t) <= 1e-9 * max(1.0, abs(next_t)):
            out.append(z)
            next_t = next(want, None)
    return z, out


def _linear_step(scheme: Theta, counter: CountedFunction, z: Tensor, t_a: float, t_b: float, adjoint: bool,
                 settings: NewtonSettings, params: Tuple[Tensor, ...], stats: Dict[str, int]) -> Tensor:
    """One step of the (linearly) implicit scheme through ``f``'s linear operator at ``z``."""
    h, theta = t_b - t_a, scheme.theta
    op = _operator(counter, torch.tensor(t_a, dtype=z.dtype, device=z.device), z)
    rhs = z
    if theta < 1.0:
        rhs = rhs + h * (1.0 - theta) * op.matvec(z)
    if op.constant is not None:
        rhs = rhs + h * op.constant
    solver = KRYLOV[_krylov_name(settings.krylov, op)]
    where = f"{scheme.name} at t={t_a:.6g} (step {h:.3g})"

    def solve(mv, b, x0):
        return solve_or_raise(solver, mv, b, x0, settings.krylov_tol, settings.krylov_max_iter, where)

    if adjoint:
        return LinearSolve.apply(rhs, z, op, h * theta, solve, stats, *op.tensors, *params)
    res = solve(lambda v: v - h * theta * op.matvec(v), rhs, z)
    stats["linear_iterations"] += res.iterations
    return res.x


def _newton_krylov(settings: NewtonSettings) -> NewtonSettings:
    """Without an operator nothing says the Jacobian is symmetric: ``auto`` means BiCGStab."""
    return settings if settings.krylov != "auto" else dataclasses.replace(settings, krylov="bicgstab")


def _krylov_name(krylov: str, op: LinearOperator) -> str:
    if krylov == "auto":
        return "cg" if op.symmetric else "bicgstab"
    if krylov == "cg" and not op.symmetric:
        raise ValueError("krylov='cg' needs a symmetric operator; this function's is not (use 'bicgstab')")
    return krylov
