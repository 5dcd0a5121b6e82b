"""Adaptive Runge-Kutta solves of an affine graph ODE ``dz/dt = L z + c`` with a hand-written reverse pass.

BLEND's tuned runs freeze the attention at ``z(0)``, which makes f affine: ``L = sigma(alpha) (A - I)`` on the
graph's pattern and ``c = beta z(0)`` (:meth:`~beltrami.functions.FrozenAttentionDiffusion.affine_form`).
Such an f is evaluated here as one sparse product with the source added in the same call
(``torch.addmm``), with no autograd graph: the steps are those of
:func:`~beltrami.solvers.runge_kutta.integrate_adaptive`, recorded as they are accepted. The backward walks
the recorded steps in reverse and transposes each one exactly (the gradient of the computed solution, as
direct backprop gives it): a stage ``k_i = L y_i + c`` sends ``L^T kbar_i`` to its input ``y_i``,
``<kbar_i, y_i>`` sampled on the pattern to ``L``'s values and ``kbar_i`` to ``c``, and each linear
combination of stages sends its weights back. Per stage that is one transposed product and one sampled
product, with the combinations accumulated in place; autograd recorded about ten operations per stage and
allocated a tensor for each of their gradients.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..csr_tensor import sparse_csr
from .interfaces import AffineForm
from ..sparse.ops import TORCH
from .runge_kutta import Step, Tableau, integrate_adaptive
from .solution import CountedFunction


class _Operator:
    """``L`` (and ``L^T``) of an :class:`AffineForm` for one solve: products without autograd."""

    def __init__(self, form: AffineForm) -> None:
        self.form, self.values = form, form.values.detach()
        self.source = None if form.source is None else form.source.detach()
        idx, n = form.index, form.index.crow.numel() - 1
        self.native = form.backend == TORCH
        if self.native:
            self.matrix = sparse_csr(idx.crow, idx.col, self.values, (n, n))
        self._transposed: Optional[Tensor] = None

    def apply(self, y: Tensor) -> Tensor:
        """``L y + c``."""
        if self.native:
            return torch.addmm(self.source, self.matrix, y) if self.source is not None else self.matrix @ y
        i = self.form.index
        out = torch.ops.beltrami.csr_spmm(i.crow, i.col, self.values, y, i.t_crow, i.t_col, i.t_perm, i.t_perm_inv,
                                          self.form.backend)
        return out if self.source is None else out.add_(self.source)

    def apply_transposed(self, g: Tensor) -> Tensor:
        """``L^T g``."""
        i, n = self.form.index, self.form.index.crow.numel() - 1
        if self._transposed is None:
            self._transposed = self.values.index_select(0, i.t_perm)
        if self.native:
            lt = sparse_csr(i.t_crow, i.t_col, self._transposed, (n, n))
            return lt @ g
        return torch.ops.beltrami.csr_spmm(i.t_crow, i.t_col, self._transposed, g, i.crow, i.col, i.t_perm_inv,
                                           i.t_perm, self.form.backend)

    def sampled(self, a: Tensor, b: Tensor) -> Tensor:
        """``<a[row e], b[col e]>`` for every stored entry ``e``: the gradient of ``L``'s values."""
        i = self.form.index
        return torch.ops.beltrami.csr_sddmm(i.crow, i.col, a, b, i.t_crow, i.t_col, i.t_perm, i.t_perm_inv)


def _accumulate(slot: List[Optional[Tensor]], j: int, g: Tensor, scale: float) -> None:
    if scale == 0.0:
        return
    if slot[j] is None:
        slot[j] = g * scale
    else:
        slot[j].add_(g, alpha=scale)


class _AffineSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z0: Tensor, values: Tensor, source: Optional[Tensor], form: AffineForm, ts: Sequence[float],
                tab: Tableau, rtol: float, atol: float, max_steps: int, scheme: str,
                counter: CountedFunction, differentiable: bool, save: Optional[Callable] = None) -> Tensor:
        op = _Operator(form)

        def evaluate(t: Tensor, y: Tensor) -> Tensor:
            counter.forward_calls += 1
            return op.apply(y)

        record: Optional[List[Step]] = [] if differentiable else None  # an evaluation keeps no steps
        zs = integrate_adaptive(counter, z0, ts, tab, rtol, atol, max_steps, scheme, func=evaluate, record=record,
                                save=save)
        if record is None:
            return zs
        # the recorded states as saved tensors: autograd frees them after the backward (unless retained)
        ctx.save_for_backward(z0, *(y for step in record for y in step.inputs))
        ctx.steps = [(step.h, step.outputs) for step in record]
        ctx.op, ctx.tab, ctx.counter = op, tab, counter
        return zs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_zs: Tensor):
        op, tab, counter = ctx.op, ctx.tab, ctx.counter
        z0, *saved = ctx.saved_tensors
        per_step = len(tab.a)  # a step's start state is not needed: only where its stages were evaluated
        record = [Step(h, None, saved[i * per_step:(i + 1) * per_step], outputs)
                  for i, (h, outputs) in enumerate(ctx.steps)]
        grad_values = torch.zeros_like(op.values) if ctx.needs_input_grad[1] else None
        grad_source = torch.zeros_like(z0) if op.source is not None and ctx.needs_input_grad[2] else None
        y_bar: Optional[Tensor] = None  # adjoint of the state at the end of the step being transposed
        carry: Optional[Tensor] = None  # adjoint of f at that state (the next step's first stage)

        def pull(k_bar: Tensor, y_in: Tensor) -> Tensor:
            """Transpose one evaluation ``k = L y_in + c``: returns the adjoint of ``y_in``."""
            counter.backward_calls += 1
            if grad_values is not None:
                grad_values.add_(op.sampled(k_bar, y_in))
            if grad_source is not None:
                grad_source.add_(k_bar)
            return op.apply_transposed(k_bar)

        for step in reversed(record):
            k_bar: List[Optional[Tensor]] = [None] * len(tab.b)
            y0_bar = torch.zeros_like(z0) if y_bar is None else y_bar.clone()
            for index, weights in step.outputs:
                y0_bar.add_(grad_zs[index])
                for j, w in enumerate(weights):
                    _accumulate(k_bar, j, grad_zs[index], step.h * w)
            if y_bar is not None:  # y1 = y0 + h sum_j b_j k_j
                for j, b in enumerate(tab.b):
                    _accumulate(k_bar, j, y_bar, step.h * b)
            if carry is not None:
                _accumulate(k_bar, len(tab.b) - 1, carry, 1.0)
            for i in range(len(tab.a), 0, -1):  # stage i was evaluated at y0 + h sum_{j<i} a_ij k_j
                if k_bar[i] is None:
                    continue
                yi_bar = pull(k_bar[i], step.inputs[i - 1])
                y0_bar.add_(yi_bar)
                for j, a in enumerate(tab.a[i - 1]):
                    _accumulate(k_bar, j, yi_bar, step.h * a)
            carry, y_bar = k_bar[0], y0_bar
        z0_bar = grad_zs[0].clone() if y_bar is None else y_bar.add_(grad_zs[0])
        if carry is not None:  # the first evaluation, f at z0
            z0_bar.add_(pull(carry, z0))
        return z0_bar, grad_values, grad_source, None, None, None, None, None, None, None, None, None, None


def solve_affine(counter: CountedFunction, form: AffineForm, z0: Tensor, ts: Sequence[float], tab: Tableau,
                 rtol: float, atol: float, max_steps: int, scheme: str,
                 save: Optional[Callable[[int, Tensor], Tensor]] = None) -> Tensor:
    """States ``[len(ts), *z0.shape]`` of ``dz/dt = L z + c`` at ``ts`` (``ts[0]`` the start), differentiable
    in ``z0``, ``form.values`` and ``form.source``. Counts evaluations and reverse passes on ``counter``.
    ``save``: as in :func:`~beltrami.solvers.runge_kutta.integrate_adaptive` (without autograd only)."""
    differentiable = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (z0, form.values, form.source))
    if save is not None and torch.is_grad_enabled():
        raise ValueError("solve_affine: save applies without autograd only")
    return _AffineSolve.apply(z0, form.values, form.source, form, list(ts), tab, rtol, atol, max_steps, scheme,
                              counter, differentiable, save)
