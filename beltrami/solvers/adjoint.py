"""Adjoint backprop.

Explicit and adaptive schemes use torchdiffeq's continuous adjoint (``odeint_adjoint``) through
:func:`adjoint_with_history`, which also carries gradients into tensors f uses that have a history of
their own (frozen attention values computed from z(0), the source term z(0)). Implicit schemes use the discrete adjoint of each linear solve below: for
``x = M^{-1} b`` with ``M = I - s L(p)`` (``s = h theta``), backward solves ``M^T lam = g`` and returns
``grad_b = lam`` and ``grad_p = s * vjp(L(p) x, p, lam)``. ``L^T lam`` comes from autograd through the
matvec, which is linear in its argument, so it is exact. Nothing of the forward Krylov iterations is kept.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch
import torchdiffeq
from torch import Tensor, nn


class LinearSolve(torch.autograd.Function):
    """``x = (I - s L)^{-1} rhs`` with an adjoint backward. ``solve(matvec, b, x0)`` runs the Krylov method
    (raising if it fails); ``inputs`` are the tensors ``L`` depends on (frozen attention values, the
    function's parameters), whose gradients flow through a vjp of ``L x``."""

    @staticmethod
    def forward(ctx, rhs: Tensor, x0: Tensor, op, s: float, solve: Callable, stats: Dict[str, int],
                *inputs: Tensor) -> Tensor:
        with torch.no_grad():
            res = solve(lambda v: v - s * op.matvec(v), rhs, x0.detach())
        stats["linear_iterations"] += res.iterations
        ctx.op, ctx.s, ctx.solve, ctx.stats = op, s, solve, stats
        ctx.save_for_backward(res.x, *inputs)
        return res.x

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, *inputs = ctx.saved_tensors
        op, s = ctx.op, ctx.s

        def transposed(lam: Tensor) -> Tensor:  # M^T lam = lam - s L^T lam
            with torch.enable_grad():
                v = torch.zeros_like(lam, requires_grad=True)
                (lt_lam,) = torch.autograd.grad(op.matvec(v), v, lam)
            return lam - s * lt_lam

        res = ctx.solve(transposed, grad, grad)
        lam = res.x
        ctx.stats["adjoint_steps"] += 1
        ctx.stats["adjoint_linear_iterations"] += res.iterations
        # L's own tensors are rebound to detached leaves: a parameter reached only through their history
        # (attention weights behind frozen values) must get its gradient once, through that history.
        k = len(op.tensors)
        leaves = tuple(t.detach().requires_grad_(t.requires_grad) for t in inputs[:k])
        targets = list(leaves) + list(inputs[k:])
        grads: List[Optional[Tensor]] = [None] * len(inputs)
        wanted = [i for i, t in enumerate(targets) if t.requires_grad]
        if wanted:
            with torch.enable_grad():
                lx = op.apply(x.detach(), leaves)
                g = torch.autograd.grad(lx, [targets[i] for i in wanted], lam, allow_unused=True)
            for i, gi in zip(wanted, g):
                grads[i] = None if gi is None else s * gi
        return (lam, None, None, None, None, None, *grads)


def adjoint_with_history(func: nn.Module, z0: Tensor, t: Tensor, adjoint_kwargs: dict) -> Tensor:
    """``odeint_adjoint`` of ``func``, with gradients for the buffers of ``func`` that require grad.

    Such a buffer (frozen attention ``A(z(0))``, the source ``z(0)``) has a history leading to parameters
    (``W_K``, ``W_Q``) and to ``z(0)``. Handing it to torchdiffeq as is would make every vjp of the augmented
    dynamics run through that history and count those parameters' gradient again on top of the one that
    flows through the buffer. So every evaluation of f, forward and backward, sees a detached leaf in its
    place (:class:`_WithLeaves`), the leaf is an adjoint parameter, and :class:`_Bridge` routes the leaf's
    gradient into the original buffer.
    """
    owners = [(mod, name) for mod in func.modules() for name, buf in mod._buffers.items()
              if buf is not None and buf.requires_grad]
    params = tuple(p for p in func.parameters() if p.requires_grad)
    if not owners:
        return torchdiffeq.odeint_adjoint(func, z0, t, adjoint_params=params, **adjoint_kwargs)
    originals = tuple(mod._buffers[name] for mod, name in owners)
    leaves = tuple(buf.detach().requires_grad_() for buf in originals)
    wrapped = _WithLeaves(func, owners, leaves)
    zs = torchdiffeq.odeint_adjoint(wrapped, z0, t, adjoint_params=params + leaves, **adjoint_kwargs)
    if not torch.is_grad_enabled():
        return zs
    # zs goes in a list: as a tensor argument it would be an edge of the graph, and the engine would run
    # the adjoint a second time (with zero gradients) after _Bridge.backward has run it.
    return _Bridge.apply([zs], (z0,) + params + leaves, z0, *params, *originals)


class _WithLeaves(nn.Module):
    """Evaluates ``func`` with some of its buffers swapped for given leaves (restored after each call).
    Other attributes (torchdiffeq's callbacks) are ``func``'s."""

    def __init__(self, func: nn.Module, owners, leaves: Tuple[Tensor, ...]) -> None:
        super().__init__()
        self.func = func
        self.owners = owners
        self.leaves = leaves

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        saved = [mod._buffers[name] for mod, name in self.owners]
        for (mod, name), leaf in zip(self.owners, self.leaves):
            mod._buffers[name] = leaf
        try:
            return self.func(t, z)
        finally:
            for (mod, name), buf in zip(self.owners, saved):
                mod._buffers[name] = buf

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.func, name)


class _Bridge(torch.autograd.Function):
    """Identity on ``zs``; backward computes the gradients of ``zs`` for ``targets`` (z0, the parameters
    and the detached leaves) in one pass and hands the leaves' gradients to the original tensors."""

    @staticmethod
    def forward(ctx, holder: List[Tensor], targets: Tuple[Tensor, ...], *inputs: Tensor) -> Tensor:
        ctx.targets = targets
        ctx.zs = holder[0]
        return holder[0].detach()

    @staticmethod
    def backward(ctx, grad: Tensor):
        wanted = [i for i, t in enumerate(ctx.targets) if t.requires_grad]
        grads: List[Optional[Tensor]] = [None] * len(ctx.targets)
        # retain_graph: a caller may backpropagate through the solution more than once (gradcheck does);
        # the inner graph is freed with this node.
        g = torch.autograd.grad(ctx.zs, [ctx.targets[i] for i in wanted], grad, allow_unused=True,
                                retain_graph=True)
        for i, gi in zip(wanted, g):
            grads[i] = gi
        return (None, None, *grads)
