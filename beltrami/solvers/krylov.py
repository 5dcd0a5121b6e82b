"""Batched Krylov solvers in torch for ``M x = b`` given only ``v -> M v``: every column of ``b`` ([N, K],
or any [N, ...]) is solved at once, with per-column scalars, on any device. torch has no CPU sparse solver;
the systems of the implicit schemes, ``(I - h theta L) x = b``, are strictly diagonally dominant, so these
converge in a few iterations.

- :func:`cg`: conjugate gradients, for symmetric positive definite ``M``.
- :func:`bicgstab`: BiCGStab (van der Vorst 1992), for general ``M``; two products per iteration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]


@dataclass
class KrylovResult:
    """``x``: the solution; ``iterations``; ``residual``: the largest relative residual ``||b - M x|| / ||b||``
    over the columns; ``converged``: whether it is at most ``tol``."""

    x: Tensor
    iterations: int
    residual: float
    converged: bool


def _cols(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=0)


def _safe_div(a: Tensor, b: Tensor) -> Tensor:
    return torch.where(b != 0, a / torch.where(b != 0, b, torch.ones_like(b)), torch.zeros_like(a))


def _prepare(matvec: MatVec, b: Tensor, x0: Optional[Tensor]):
    shape = b.shape
    bb = _cols(b)
    mv = lambda v: _cols(matvec(v.reshape(shape)))  # noqa: E731
    x = torch.zeros_like(bb) if x0 is None else _cols(x0).clone()
    bnorm = torch.linalg.vector_norm(bb.detach(), dim=0)  # only measures convergence: no gradient
    bnorm = torch.where(bnorm > 0, bnorm, torch.ones_like(bnorm))
    return shape, bb, mv, x, bnorm


def cg(matvec: MatVec, b: Tensor, x0: Optional[Tensor] = None, tol: float = 1e-8,
       max_iter: int = 1000) -> KrylovResult:
    """Conjugate gradients for SPD ``M``, all columns at once; stops when every column's relative residual
    is at most ``tol``."""
    shape, bb, mv, x, bnorm = _prepare(matvec, b, x0)
    r = bb - mv(x) if x0 is not None else bb.clone()
    p = r.clone()
    rr = _dot(r, r)
    res = float((rr.detach().sqrt() / bnorm).max()) if r.numel() else 0.0
    it = 0
    while res > tol and it < max_iter:
        ap = mv(p)
        alpha = _safe_div(rr, _dot(p, ap))
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = _dot(r, r)
        p = r + _safe_div(rr_new, rr) * p
        rr = rr_new
        it += 1
        res = float((rr.detach().sqrt() / bnorm).max())
    return KrylovResult(x.reshape(shape), it, res, res <= tol)


def bicgstab(matvec: MatVec, b: Tensor, x0: Optional[Tensor] = None, tol: float = 1e-8,
             max_iter: int = 1000) -> KrylovResult:
    """BiCGStab for general nonsingular ``M``, all columns at once."""
    shape, bb, mv, x, bnorm = _prepare(matvec, b, x0)
    r = bb - mv(x) if x0 is not None else bb.clone()
    r_hat = r.clone()
    ones = torch.ones(bb.shape[1], dtype=bb.dtype, device=bb.device)
    rho, alpha, omega = ones.clone(), ones.clone(), ones.clone()
    v = torch.zeros_like(bb)
    p = torch.zeros_like(bb)
    res = float((torch.linalg.vector_norm(r.detach(), dim=0) / bnorm).max()) if r.numel() else 0.0
    it = 0
    while res > tol and it < max_iter:
        rho_new = _dot(r_hat, r)
        beta = _safe_div(rho_new, rho) * _safe_div(alpha, omega)
        p = r + beta * (p - omega * v)
        v = mv(p)
        alpha = _safe_div(rho_new, _dot(r_hat, v))
        s = r - alpha * v
        t = mv(s)
        omega = _safe_div(_dot(t, s), _dot(t, t))
        x = x + alpha * p + omega * s
        r = s - omega * t
        rho = rho_new
        it += 1
        res = float((torch.linalg.vector_norm(r.detach(), dim=0) / bnorm).max())
    return KrylovResult(x.reshape(shape), it, res, res <= tol)


KRYLOV = {"cg": cg, "bicgstab": bicgstab}


def solve_or_raise(solver: Callable[..., KrylovResult], matvec: MatVec, b: Tensor, x0: Optional[Tensor],
                   tol: float, max_iter: int, where: str) -> KrylovResult:
    """Run ``solver``; raise ``SolverError`` naming ``where`` if it does not reach ``tol``."""
    from .solution import SolverError

    res = solver(matvec, b, x0, tol=tol, max_iter=max_iter)
    if not res.converged:
        raise SolverError(f"{where}: the linear solve did not converge: relative residual {res.residual:.2e} "
                          f"after {res.iterations} iterations (tol {tol:g})")
    return res
