"""Implicit theta steps for any ``f``: matrix-free Newton-Krylov.

A step from ``z_n`` (time ``t_a``) to ``z_{n+1}`` (time ``t_b = t_a + h``) solves the nonlinear system

    G(z) = z - h theta f(t_b, z) - b = 0,    b = z_n + h (1 - theta) f(t_a, z_n),

by Newton's method started at ``z_n``: each iteration solves ``(I - h theta J) d = -G(z)`` with the batched
Krylov methods of :mod:`~beltrami.solvers.krylov`, where ``J v`` (the Jacobian of f at ``z`` times ``v``) is a
forward-mode autograd product, one evaluation of f on dual numbers. No Jacobian is formed, so the cost per
product is that of f. A function whose operations lack forward-mode derivatives gets ``J v`` by two reverse
passes instead (``v -> d/du <J^T u, v>``).

Backprop: ``direct`` differentiates through the Newton and Krylov iterations; ``adjoint`` uses the implicit
function theorem per step (:class:`NewtonSolve`): backward solves ``(I - h theta J(z_{n+1}))^T lam = g`` with
vector-Jacobian products and keeps only each step's endpoints. Gradients reach ``z_n`` and ``f``'s parameters
(tensors f closes over that are not parameters get none, as in torchdiffeq's adjoint).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

from .krylov import KRYLOV, solve_or_raise
from .solution import CountedFunction, SolverError


@dataclass(frozen=True)
class NewtonSettings:
    """``tol``: Newton stops when ``max |G(z)| <= tol (1 + max |z|)``; ``max_iter``: Newton iterations per
    step; ``krylov``: ``cg`` or ``bicgstab`` for the linear systems, solved to ``krylov_tol`` (relative) within
    ``krylov_max_iter`` iterations."""

    tol: float
    max_iter: int
    krylov: str
    krylov_tol: float
    krylov_max_iter: int


class JacobianProducts:
    """``v -> J_f(t, z) v`` for one solve: forward mode, or, once an operation of f turned out to have no
    forward rule, two reverse passes from then on. Each product counts as one evaluation of f."""

    def __init__(self, counter: CountedFunction) -> None:
        self.counter = counter
        self.forward_mode = True

    def __call__(self, t: Tensor, z: Tensor, v: Tensor) -> Tensor:
        self.counter.forward_calls += 1
        if self.forward_mode:
            try:
                with fwAD.dual_level():
                    return fwAD.unpack_dual(self.counter.func(t, fwAD.make_dual(z, v))).tangent
            except NotImplementedError:  # e.g. torch.sparse.mm, a custom autograd.Function without jvp
                self.forward_mode = False
        differentiable = torch.is_grad_enabled()  # direct backprop differentiates through the product
        with torch.enable_grad():
            zl = z if z.requires_grad else z.detach().requires_grad_()
            out = self.counter.func(t, zl)
            u = torch.zeros_like(out, requires_grad=True)
            (vjp,) = torch.autograd.grad(out, zl, u, create_graph=True)
            (jv,) = torch.autograd.grad(vjp, u, v, create_graph=differentiable)
        return jv


@dataclass
class ThetaStep:
    """One step of a theta scheme on a function without a linear operator."""

    counter: CountedFunction
    jvp: JacobianProducts
    t_a: float
    t_b: float
    theta: float
    settings: NewtonSettings
    stats: Dict[str, int]

    @property
    def h(self) -> float:
        return self.t_b - self.t_a

    def _time(self, t: float, like: Tensor) -> Tensor:
        return torch.tensor(t, dtype=like.dtype, device=like.device)

    def explicit_part(self, z_n: Tensor) -> Tensor:
        """``b = z_n + h (1 - theta) f(t_a, z_n)``."""
        if self.theta >= 1.0:
            return z_n
        return z_n + self.h * (1.0 - self.theta) * self.counter(self._time(self.t_a, z_n), z_n)

    def _krylov(self, matvec, b: Tensor, x0, where: str):
        """Solve ``M x = b`` as ONE system: the batched Krylov methods treat columns as independent systems,
        true of graph diffusion but not of a general f, whose Jacobian mixes the channels."""
        cfg, shape = self.settings, b.shape
        res = solve_or_raise(KRYLOV[cfg.krylov], lambda v: matvec(v.reshape(shape)).reshape(-1, 1),
                             b.reshape(-1, 1), None if x0 is None else x0.reshape(-1, 1), cfg.krylov_tol,
                             cfg.krylov_max_iter, where)
        res.x = res.x.reshape(shape)
        return res

    def solve(self, z_n: Tensor) -> Tensor:
        """``z_{n+1}`` by Newton-Krylov (differentiable when grad is enabled: direct backprop)."""
        s, cfg = self.h * self.theta, self.settings
        t_b = self._time(self.t_b, z_n)
        b = self.explicit_part(z_n)
        z = z_n
        where = f"{self.counter.scheme} (Newton) at t={self.t_a:.6g} (step {self.h:.3g})"
        for it in range(cfg.max_iter + 1):
            residual = b + s * self.counter(t_b, z) - z  # -G(z)
            size = float(residual.detach().abs().max())
            if size <= cfg.tol * (1.0 + float(z.detach().abs().max())):
                return z
            if it == cfg.max_iter or size != size:
                break
            res = self._krylov(lambda v, z=z: v - s * self.jvp(t_b, z, v), residual, None, where)
            self.stats["linear_iterations"] += res.iterations
            self.stats["newton_iterations"] += 1
            z = z + res.x
        raise SolverError(f"{where}: Newton did not converge in {cfg.max_iter} iterations (residual {size:.3g}, "
                          f"tolerance {cfg.tol:g}); try a smaller step or a larger newton_max_iter")

    def adjoint(self, z_n: Tensor, z_next: Tensor, grad: Tensor, params: Tuple[Tensor, ...]):
        """Gradients of ``<grad, z_{n+1}>`` for ``z_n`` and ``params`` (the implicit function theorem)."""
        s = self.h * self.theta
        with torch.enable_grad():
            zl = z_next.detach().requires_grad_()
            f_next = self.counter(self._time(self.t_b, zl), zl)

            def transposed(lam: Tensor) -> Tensor:  # (I - s J)^T lam
                (jt_lam,) = torch.autograd.grad(f_next, zl, lam, retain_graph=True)
                return lam - s * jt_lam

            where = f"{self.counter.scheme} (Newton adjoint) at t={self.t_a:.6g}"
            res = self._krylov(transposed, grad, grad, where)
            lam = res.x
            self.stats["adjoint_steps"] += 1
            self.stats["adjoint_linear_iterations"] += res.iterations
            z_nl = z_n.detach().requires_grad_()
            outputs, weights = [f_next], [s * lam]
            if self.theta < 1.0:
                outputs.append(self.counter(self._time(self.t_a, z_nl), z_nl))
                weights.append(self.h * (1.0 - self.theta) * lam)
            wanted = [z_nl] + [p for p in params if p.requires_grad]
            grads = torch.autograd.grad(outputs, wanted, weights, allow_unused=True)
        grad_z = lam if grads[0] is None else lam + grads[0]
        it = iter(grads[1:])
        return grad_z, tuple(next(it) if p.requires_grad else None for p in params)


class NewtonSolve(torch.autograd.Function):
    """Attaches :meth:`ThetaStep.adjoint` as the backward of ``z_{n+1}`` (solved beforehand without autograd:
    forward-mode products do not run inside a Function's forward). ``params``: f's parameters, inputs so
    that their gradients flow."""

    @staticmethod
    def forward(ctx, z_n: Tensor, z_next: Tensor, step: ThetaStep, *params: Tensor) -> Tensor:
        ctx.step = step
        ctx.save_for_backward(z_n, z_next, *params)
        return z_next.view_as(z_next)

    @staticmethod
    def backward(ctx, grad: Tensor):
        z_n, z_next, *params = ctx.saved_tensors
        grad_z, grad_params = ctx.step.adjoint(z_n, z_next, grad, tuple(params))
        return (grad_z, None, None, *grad_params)


def newton_step(step: ThetaStep, z_n: Tensor, adjoint: bool, params: Tuple[Tensor, ...]) -> Tensor:
    """One theta step of a function without ``linear_operator``; ``adjoint`` selects the backward."""
    if not adjoint:
        return step.solve(z_n)
    with torch.no_grad():
        z_next = step.solve(z_n.detach())
    return NewtonSolve.apply(z_n, z_next, step, *params)
