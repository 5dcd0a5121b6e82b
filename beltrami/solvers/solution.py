"""`Solution` and the per-solve counters behind its `stats`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor, nn


class SolverError(RuntimeError):
    """A solve failed: step-size underflow, a non-finite state, too many steps, a Krylov solve that did
    not converge. The message names the scheme, the time and the step size."""


class _CountBackward(torch.autograd.Function):
    """Identity whose backward counts one backward pass through one evaluation of f."""

    @staticmethod
    def forward(ctx, out: Tensor, counter: "CountedFunction") -> Tensor:
        ctx.counter = counter
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad: Tensor):
        ctx.counter.backward_calls += 1
        return grad, None


class CountedFunction(nn.Module):
    """Wraps ``func`` for one solve: counts evaluations of f (forward), backward passes through them
    (direct backprop), and the steps torchdiffeq reports through its callbacks, forward and adjoint.

    A fresh wrapper is made for every call of :func:`~beltrami.solvers.solve`, so counts are per call,
    never cumulative.
    """

    def __init__(self, func: nn.Module, scheme: str = "") -> None:
        super().__init__()
        self.func = func
        self.scheme = scheme
        self.last_t: Optional[float] = None
        self.last_dt: Optional[float] = None
        self.forward_calls = 0
        self.backward_calls = 0
        self.steps = 0
        self.accepted = 0
        self.rejected = 0
        self.adjoint_steps = 0
        self.adjoint_rejected = 0

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        self.forward_calls += 1
        out = self.func(t, z)
        if torch.is_grad_enabled() and out.requires_grad:
            out = _CountBackward.apply(out, self)
        return out

    # torchdiffeq callbacks (t0, y0, dt); the implicit schemes call callback_step too.
    def callback_step(self, t0, y0, dt, check: bool = True) -> None:
        """Count the step, remember where the solver is (for error messages) and, with ``check``, that the
        state is finite (torchdiffeq's fixed-grid solvers do not check it)."""
        self.steps += 1
        self.last_t, self.last_dt = float(torch.as_tensor(t0).detach()), float(torch.as_tensor(dt).detach())
        if check and not bool(torch.isfinite(y0).all()):
            raise SolverError(f"{self.scheme}: non-finite state at t={self.last_t:.6g} (step {self.last_dt:.3g}): "
                              "the scheme is unstable at this step size (try a smaller step or an implicit scheme)")

    def callback_step_adjoint(self, t0, y0, dt) -> None:
        self.adjoint_steps += 1


# torchdiffeq warns about every callback a solver cannot call, on each solve and on each adjoint solve in
# backward; a counter has only those its solvers call, so nothing needs to silence that warning.
class _StepOutcomes:
    """The callbacks of adaptive schemes: a step accepted or rejected."""

    def callback_accept_step(self, t0, y0, dt) -> None:
        self.accepted += 1

    def callback_reject_step(self, t0, y0, dt) -> None:
        self.rejected += 1


class _AdjointRejections:
    """The callback of an adaptive adjoint scheme: a step of the backward solve rejected."""

    def callback_reject_step_adjoint(self, t0, y0, dt) -> None:
        self.adjoint_rejected += 1


_COUNTERS = {(adaptive, adjoint_adaptive): type(
    "CountedFunction", tuple(b for b, on in ((_StepOutcomes, adaptive), (_AdjointRejections, adjoint_adaptive)) if on)
    + (CountedFunction,), {"__doc__": CountedFunction.__doc__, "__module__": __name__})
    for adaptive in (False, True) for adjoint_adaptive in (False, True)}


def counted(func: nn.Module, scheme: str, adaptive: bool, adjoint_adaptive: bool = False) -> CountedFunction:
    """A :class:`CountedFunction` with the step callbacks of an adaptive scheme (forward, and backward for an
    adaptive adjoint scheme) only where the solve uses one."""
    return _COUNTERS[(adaptive, adjoint_adaptive)](func, scheme)


@dataclass
class Solution:
    """The result of :func:`~beltrami.solvers.solve`.

    Attributes:
        z: the state at ``t1``, ``[N, D]`` (or the same shape as ``z0``).
        ts: the times at which states were requested (``t_eval``, always ending with ``t1``), ``[K]``.
        zs: the states at ``ts``, ``[K, N, D]``.
        scheme: the scheme's name; backprop: ``direct`` or ``adjoint``.
        stats: a snapshot dict (see :attr:`stats`); backward counts fill in after ``.backward()``.
    """

    z: Tensor
    ts: Tensor
    zs: Tensor
    scheme: str
    backprop: str
    counter: CountedFunction = field(repr=False)
    extra: Dict[str, Any] = field(default_factory=dict, repr=False)
    _nfe_forward: int = field(default=0, repr=False)

    @property
    def stats(self) -> Dict[str, int]:
        """``nfe_forward`` (evaluations of f during the solve), ``nfe_backward`` (direct: backward passes
        through evaluations of f; adjoint: evaluations of the augmented dynamics), ``steps`` (steps attempted
        in forward), ``rejected_steps``, ``linear_iterations`` (Krylov iterations, implicit schemes),
        ``newton_iterations`` (implicit schemes on a function without a linear operator) and for adjoint
        ``adjoint_steps``. A Jacobian-vector product counts as one evaluation of f."""
        c = self.counter
        if self.backprop == "adjoint":
            nfe_backward = c.forward_calls - self._nfe_forward
        else:
            nfe_backward = c.backward_calls
        s = {"nfe_forward": self._nfe_forward, "nfe_backward": nfe_backward, "steps": c.steps,
             "rejected_steps": c.rejected, "linear_iterations": int(self.extra.get("linear_iterations", 0))}
        if "newton_iterations" in self.extra:
            s["newton_iterations"] = int(self.extra["newton_iterations"])
        if self.backprop == "adjoint":
            s["adjoint_steps"] = c.adjoint_steps + int(self.extra.get("adjoint_steps", 0))
            s["adjoint_linear_iterations"] = int(self.extra.get("adjoint_linear_iterations", 0))
        return s

    @property
    def regularization(self) -> Dict[str, Tensor]:
        """The integrated RNODE terms ``kinetic`` and ``jacobian`` (scalars, differentiable) and ``loss``,
        their weighted sum; zeros when no regularisation was asked for."""
        terms = self.extra.get("regularization")
        if terms is None:
            zero = self.z.new_zeros(())
            return {"kinetic": zero, "jacobian": zero, "loss": zero}
        w = self.extra["regularization_weights"]
        return {**terms, "loss": w.kinetic * terms["kinetic"] + w.jacobian * terms["jacobian"]}

    def at(self, t: float) -> Tensor:
        """The state at a requested time ``t`` (one of ``ts``)."""
        hits = (self.ts - t).abs() <= 1e-9 * max(1.0, abs(t))
        if not bool(hits.any()):
            raise KeyError(f"t={t} was not requested; available: {self.ts.tolist()}")
        return self.zs[int(hits.nonzero()[0])]

    def times(self) -> List[float]:
        return self.ts.tolist()
