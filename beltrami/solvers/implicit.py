"""Implicit theta schemes: backward Euler (theta = 1, order 1) and Crank-Nicolson (theta = 1/2, order 2).

A step from ``z_n`` to ``z_{n+1}`` writes the function at ``z_n`` in affine form ``f(z) = L z + c``
(:meth:`linear_operator`: exact for linear diffusion and frozen attention; for the time-dependent
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
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..functions.base import LinearOperator
from .adjoint import LinearSolve
from .base import Scheme, register
from .krylov import KRYLOV, solve_or_raise
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
    if not hasattr(func, "linear_operator"):
        raise ValueError(f"implicit schemes need a function with linear_operator(t, z) (the affine form of f "
                         f"at z); {type(func).__name__} has none. Use an explicit or adaptive scheme.")
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
                    adjoint: bool, krylov: str, tol: float, max_iter: int, max_steps: int,
                    stats: Dict[str, int]) -> Tuple[Tensor, List[Tensor]]:
    """Integrate over ``ts`` (requested times, ascending); returns the final state and the states at ``ts``."""
    grid = step_grid(ts, step_size)
    if len(grid) - 1 > max_steps:
        raise SolverError(f"{scheme.name}: {len(grid) - 1} steps of size <= {step_size} exceed max_steps={max_steps}")
    theta = scheme.theta
    params = tuple(p for p in counter.func.parameters() if p.requires_grad)
    z = z0
    out = [z0]
    want = iter(ts[1:])
    next_t = next(want, None)
    for t_a, t_b in zip(grid[:-1], grid[1:]):
        h = t_b - t_a
        counter.callback_step(t_a, z, h)
        t = torch.tensor(t_a, dtype=z.dtype, device=z.device)
        op = _operator(counter, t, z)
        rhs = z
        if theta < 1.0:
            rhs = rhs + h * (1.0 - theta) * op.matvec(z)
        if op.constant is not None:
            rhs = rhs + h * op.constant
        solver = KRYLOV[_krylov_name(krylov, op)]
        where = f"{scheme.name} at t={t_a:.6g} (step {h:.3g})"

        def solve(mv, b, x0, solver=solver, where=where):
            return solve_or_raise(solver, mv, b, x0, tol, max_iter, where)

        if adjoint:
            z = LinearSolve.apply(rhs, z, op, h * theta, solve, stats, *op.tensors, *params)
        else:
            res = solve(lambda v: v - h * theta * op.matvec(v), rhs, z)
            stats["linear_iterations"] += res.iterations
            z = res.x
        if not bool(torch.isfinite(z).all()):
            raise SolverError(f"{scheme.name}: non-finite state at t={t_b:.6g} after a step of size {h:.3g}")
        if next_t is not None and abs(t_b - next_t) <= 1e-9 * max(1.0, abs(next_t)):
            out.append(z)
            next_t = next(want, None)
    return z, out


def _krylov_name(krylov: str, op: LinearOperator) -> str:
    if krylov == "auto":
        return "cg" if op.symmetric else "bicgstab"
    if krylov == "cg" and not op.symmetric:
        raise ValueError("krylov='cg' needs a symmetric operator; this function's is not (use 'bicgstab')")
    return krylov
