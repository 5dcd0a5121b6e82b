"""The fused custom ops of our own kernels (backends ``"cpp"`` and ``"triton"``), with their autograd formulas (first derivatives only).

- ``beltrami::attention_diffusion``: dot-product scores, the row softmax, the head mean, the product with
  ``x`` and the relaxation ``alpha (A x - x)`` in one kernel (C++ on the CPU, Triton on CUDA), for the
  time-dependent Beltrami flow, whose every evaluation recomputes the attention.
- ``beltrami::projection``: ``x @ weight.T + bias`` on the CPU with its output and the gradient of ``x`` on the
  C++ kernels' recycled memory (the keys and queries that feed ``attention_diffusion``).

Registered when :mod:`beltrami.sparse` is imported; called as ``torch.ops.beltrami.*``.
"""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor


@torch.library.custom_op("beltrami::attention_diffusion", mutates_args=())
def attention_diffusion(crow: Tensor, col: Tensor, kq: Tensor, x: Tensor, alpha: Tensor, t_crow: Tensor,
                        t_col: Tensor, t_perm: Tensor, scale: float) -> List[Tensor]:
    """Fused ``alpha (A(k, q) @ x - x)`` (C++ kernel on the CPU, Triton on CUDA): ``A`` the head mean of the
    row softmax of the scores ``scale * <k[i, h], q[j, h]>``. Returns ``[out, att]``: ``out`` ``[N, D]`` and
    the per-head attention ``att`` ``[E, H]`` (kept for the backward; not differentiable). ``kq``:
    ``[N, 2, H, K]``, keys then queries; ``x``: ``[N, D]``; ``alpha``: a one-element tensor."""
    from .cpu_kernels import load

    return list(load().attention_diffusion(crow, col, kq.detach(), x.detach(), alpha.detach(), scale))


@attention_diffusion.register_kernel("cuda")
def _(crow, col, kq, x, alpha, t_crow, t_col, t_perm, scale):
    from . import triton_kernels

    return list(triton_kernels.attention_diffusion(crow, col, kq, x, alpha, scale))


@attention_diffusion.register_fake
def _(crow, col, kq, x, alpha, t_crow, t_col, t_perm, scale):
    return [x.new_empty(x.shape), x.new_empty((col.shape[0], kq.shape[2]))]


@torch.library.custom_op("beltrami::attention_diffusion_backward", mutates_args=())
def attention_diffusion_backward(crow: Tensor, col: Tensor, kq: Tensor, x: Tensor, alpha: Tensor, t_crow: Tensor,
                                 t_col: Tensor, t_perm: Tensor, att: Tensor, grad: Tensor, scale: float,
                                 need_kq: bool, need_x: bool, need_alpha: bool) -> List[Tensor]:
    """Gradients ``[grad_kq, grad_x, grad_alpha]`` of :func:`attention_diffusion` (empty tensors where not
    needed)."""
    from .cpu_kernels import load

    grads = load().attention_diffusion_backward(crow, col, t_crow, t_col, t_perm, kq, x, alpha, att, grad, scale,
                                                need_kq, need_x, need_alpha)
    return [g if g is not None else x.new_empty(0) for g in grads]


@attention_diffusion_backward.register_kernel("cuda")
def _(crow, col, kq, x, alpha, t_crow, t_col, t_perm, att, grad, scale, need_kq, need_x, need_alpha):
    from . import triton_kernels

    return triton_kernels.attention_diffusion_backward(crow, col, t_crow, t_col, t_perm, kq, x, alpha, att, grad,
                                                       scale, need_kq, need_x, need_alpha)


@attention_diffusion_backward.register_fake
def _(crow, col, kq, x, alpha, t_crow, t_col, t_perm, att, grad, scale, need_kq, need_x, need_alpha):
    return [kq.new_empty(kq.shape if need_kq else (0,)), x.new_empty(x.shape if need_x else (0,)),
            alpha.new_empty(alpha.shape if need_alpha else (0,))]


def _save_attention(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs[:8], output[1])
    ctx.scale = inputs[8]
    ctx.mark_non_differentiable(output[1])
    ctx.set_materialize_grads(False)  # no [E, H] zeros for the gradient of att, which nothing uses


def _attention_backward(ctx, grads: List[Tensor]):
    crow, col, kq, x, alpha, t_crow, t_col, t_perm, att = ctx.saved_tensors
    need = ctx.needs_input_grad
    if grads[0] is None:
        return (None,) * 9
    grad_kq, grad_x, grad_alpha = attention_diffusion_backward(crow, col, kq, x, alpha, t_crow, t_col, t_perm, att,
                                                               grads[0].contiguous(), ctx.scale, need[2], need[3],
                                                               need[4])
    return (None, None, grad_kq if need[2] else None, grad_x if need[3] else None, grad_alpha if need[4] else None,
            None, None, None, None)


def _attention_double_backward(ctx, grads: List[Tensor]):
    raise RuntimeError("double backward through the fused C++/Triton attention (beltrami::attention_diffusion) "
                       "is not implemented; use the sparse backend 'torch' for second derivatives of a time-dependent "
                       "Beltrami flow")


@torch.library.custom_op("beltrami::projection", mutates_args=(), device_types="cpu")
def projection(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``F.linear(x, weight, bias)`` (``x`` ``[N, K]``, ``weight`` ``[M, K]``, ``bias`` ``[M]`` -> ``[N, M]``) on
    the CPU, with the output and the gradient of ``x`` taken from the C++ kernels' buffer pool instead of
    fresh tensors (whose page faults cost as much as the products at arxiv size). First derivatives only."""
    from .cpu_kernels import load

    return load().projection(x.detach(), weight.detach(), bias.detach())


@projection.register_fake
def _(x, weight, bias):
    return x.new_empty((x.shape[0], weight.shape[0]))


@torch.library.custom_op("beltrami::projection_backward", mutates_args=(), device_types="cpu")
def projection_backward(x: Tensor, weight: Tensor, grad: Tensor, need_x: bool, need_weight: bool,
                        need_bias: bool) -> List[Tensor]:
    """``[grad_x, grad_weight, grad_bias]`` of :func:`projection` (empty tensors where not needed)."""
    from .cpu_kernels import load

    grads = load().projection_backward(x.detach(), weight.detach(), grad.detach(), need_x, need_weight, need_bias)
    return [g if g is not None else x.new_empty(0) for g in grads]


@projection_backward.register_fake
def _(x, weight, grad, need_x, need_weight, need_bias):
    return [x.new_empty(x.shape if need_x else (0,)), weight.new_empty(weight.shape if need_weight else (0,)),
            weight.new_empty(weight.shape[:1] if need_bias else (0,))]


def _save_projection(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], inputs[1])


def _projection_backward(ctx, grad: Tensor):
    x, weight = ctx.saved_tensors
    need = ctx.needs_input_grad
    grads = projection_backward(x, weight, grad.contiguous(), need[0], need[1], need[2])
    return tuple(g if n else None for g, n in zip(grads, need))


def _projection_double_backward(ctx, grads: List[Tensor]):
    raise RuntimeError("double backward through beltrami::projection (the fused attention's keys and queries) "
                       "is not implemented; use the sparse backend 'torch' for second derivatives")


def _save_nothing(ctx, inputs, output) -> None:
    pass


attention_diffusion.register_autograd(_attention_backward, setup_context=_save_attention)
attention_diffusion_backward.register_autograd(_attention_double_backward, setup_context=_save_nothing)
projection.register_autograd(_projection_backward, setup_context=_save_projection)
projection_backward.register_autograd(_projection_double_backward, setup_context=_save_nothing)
