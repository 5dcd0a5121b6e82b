"""The sparse custom ops, registered with ``torch.library`` with their autograd formulas (the fused
attention and projection ops of our own kernels, backends ``"cpp"`` and ``"triton"``, are in
:mod:`beltrami.sparse.fused_ops`).

- ``beltrami::csr_spmm``: ``out = A(values) @ x`` for CSR ``A``.
- ``beltrami::csr_sddmm``: ``out[e] = <a[row[e]], b[col[e]]>`` (sampled dense-dense product), which is the
  gradient of ``csr_spmm`` with respect to ``values``.
- ``beltrami::csr_spmm_backward``: both first derivatives of ``csr_spmm`` in one pass (backends ``"cpp"``
  on the CPU and ``"triton"`` on CUDA, ``[E]`` values).
- ``beltrami::segment_softmax``: the softmax of edge scores within segments (CSR rows or columns), fused:
  autograd through its dozen elementwise steps made as many passes and allocations over ``[E, H]``.

Why custom ops: autograd through a native CSR tensor builds a dense n x n gradient for ``values``
(measured with torch 2.13), and ``torch.compile`` cannot trace sparse tensors. As custom ops the sparse
work is opaque to the compiler (the dense code around it still compiles), TorchScript calls them as
``torch.ops.beltrami.*``, and their gradients are O(|E| d): ``d values = sddmm(grad, x)`` and
``d x = A^T @ grad`` through the cached transpose permutation. Each backward is written with the same two
ops, so double backward (needed by Jacobian regularisation) works too.

Shapes: ``values`` ``[E]`` with ``x`` ``[N, D]`` -> ``[N, D]``; or per-head ``values`` ``[E, H]`` with ``x``
``[N, H, D]`` -> ``[N, H, D]``.
"""
from __future__ import annotations

from types import ModuleType
from typing import List, Optional

import torch
from torch import Tensor

try:
    from ..csr_tensor import sparse_csr  # PyTorch's "beta" warning filtered for that call only
except ImportError:  # loaded on its own, to run an exported model without beltrami: torch's constructor
    def sparse_csr(crow: Tensor, col: Tensor, values: Tensor, shape) -> Tensor:
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)

def _csr(crow: Tensor, col: Tensor, values: Tensor, ncols: int) -> Tensor:
    return sparse_csr(crow, col, values, (crow.numel() - 1, ncols))


def _triton() -> Optional[ModuleType]:
    """:mod:`beltrami.sparse.triton_kernels` where triton is installed; None where it is not, or where this
    file was loaded on its own (an exported TorchScript model registers these ops without the package)."""
    try:
        from . import triton_kernels
    except ImportError:
        return None
    return triton_kernels if triton_kernels.available() else None


def _triton_width(width: int) -> bool:
    """Whether the Triton kernels are here and take rows of this width."""
    triton_kernels = _triton()
    return triton_kernels is not None and width <= triton_kernels.MAX_WIDTH


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x.index_select(0, index)``, also fast on CUDA for narrow rows (``[N, H]`` per-head values).

    PyTorch gathers rows of ``[N, H]`` on CUDA with a kernel that is slow for rows of a few bytes (1% of an
    H200's bandwidth for four float32 per row), where this function's flat gather of the same elements
    through a 1-D index runs at bandwidth (docs/measurements/2026-11-gpu-h200.md). Differentiable in ``x``.
    """
    if x.is_cuda and x.dim() == 2 and x.shape[1] > 1:
        return gather_rows_flat(x, index)
    return x.index_select(0, index)


def gather_rows_flat(x: Tensor, index: Tensor) -> Tensor:
    """``x.index_select(0, index)`` for a contiguous ``[N, H]`` ``x`` as a 1-D gather of ``index * H + h``."""
    h = x.shape[1]
    flat = (index.unsqueeze(1) * h + torch.arange(h, device=index.device)).reshape(-1)
    return x.reshape(-1).index_select(0, flat).view(index.shape[0], h)


TORCH, TORCH_SPARSE, CPP, TRITON = 0, 1, 2, 3
"""Kernel ids for the ``backend`` argument of ``csr_spmm`` (an int, so TorchScript can carry it): torch's CSR
kernel, torch_sparse's, our C++ kernels (CPU tensors only) and our Triton kernels (CUDA tensors only)."""


def check_kernel_device(backend: int, x: Tensor) -> None:
    """Our own kernels run on one device type each: say so instead of running another kernel silently."""
    if backend == CPP and x.is_cuda:
        raise ValueError("sparse backend 'cpp' runs C++ kernels on CPU tensors; these are on CUDA: use backend "
                         "'triton' there (or 'torch')")
    if backend == TRITON and not x.is_cuda:
        raise ValueError("sparse backend 'triton' runs Triton kernels on CUDA tensors; these are on the CPU: use "
                         "backend 'cpp' there (or 'torch')")


def _spmm_one(crow: Tensor, col: Tensor, values: Tensor, x: Tensor, backend: int) -> Tensor:
    check_kernel_device(backend, x)
    if backend == CPP:
        from .cpu_kernels import load

        return load().csr_spmm(crow, col, values.detach(), x.detach())
    if backend == TRITON and _triton_width(x.shape[-1]):  # wider rows: torch's kernel (see triton_kernels)
        return _triton().csr_spmm(crow, col, values, x)
    if backend == TORCH_SPARSE:
        import torch_sparse  # noqa: F401  (registers torch.ops.torch_sparse)

        # Detached: the op's own autograd formula applies; torch_sparse's would want more index arrays.
        return torch.ops.torch_sparse.spmm_sum(None, crow, col, values.detach(), None, None, x.detach())
    return _csr(crow, col, values, x.shape[0]) @ x


@torch.library.custom_op("beltrami::csr_spmm", mutates_args=())
def csr_spmm(crow: Tensor, col: Tensor, values: Tensor, x: Tensor, t_crow: Tensor, t_col: Tensor,
             t_perm: Tensor, t_perm_inv: Tensor, backend: int = TORCH) -> Tensor:
    """``A(values) @ x`` for a square CSR ``A``; the ``t_*`` arguments describe ``A^T`` (used by the backward).
    ``backend`` picks the forward kernel (the autograd formula is the same for every kernel)."""
    if values.dim() == 1:
        return _spmm_one(crow, col, values, x, backend)
    heads = [_spmm_one(crow, col, values[:, h].contiguous(), x[:, h].contiguous(), backend)
             for h in range(values.shape[1])]
    return torch.stack(heads, dim=1)


@csr_spmm.register_fake
def _(crow, col, values, x, t_crow, t_col, t_perm, t_perm_inv, backend=TORCH):
    # A is square (a graph operator): the output has x's shape. Taking it from x rather than from crow
    # keeps the node count a dynamic size under torch.compile when crow is a module buffer.
    return x.new_empty(x.shape)


@torch.library.custom_op("beltrami::csr_sddmm", mutates_args=())
def csr_sddmm(crow: Tensor, col: Tensor, a: Tensor, b: Tensor, t_crow: Tensor, t_col: Tensor,
              t_perm: Tensor, t_perm_inv: Tensor) -> Tensor:
    """``out[e] = <a[row[e]], b[col[e]]>`` for every stored entry, without an [E, D] intermediate."""
    pattern_values = a.new_zeros(col.shape[0])
    if a.dim() == 2:
        pattern = _csr(crow, col, pattern_values, b.shape[0])
        return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values()
    out: List[Tensor] = []
    for h in range(a.shape[1]):
        pattern = _csr(crow, col, pattern_values, b.shape[0])
        out.append(torch.sparse.sampled_addmm(pattern, a[:, h].contiguous(), b[:, h].t(), beta=0.0).values())
    return torch.stack(out, dim=1)


@csr_sddmm.register_fake
def _(crow, col, a, b, t_crow, t_col, t_perm, t_perm_inv):
    shape = (col.shape[0],) if a.dim() == 2 else (col.shape[0], a.shape[1])
    return a.new_empty(shape)


def _save(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _save_spmm(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs[:8])
    ctx.backend = inputs[8]


@torch.library.custom_op("beltrami::csr_spmm_backward", mutates_args=())
def csr_spmm_backward(t_crow: Tensor, t_col: Tensor, t_perm: Tensor, values: Tensor, x: Tensor, grad: Tensor,
                      need_values: bool, need_x: bool) -> List[Tensor]:
    """``[grad_values, grad_x]`` of ``csr_spmm`` for ``[E]`` values in one pass over ``A^T`` (backends
    ``"cpp"`` on the CPU, ``"triton"`` on CUDA; empty tensors where not needed): the sampled product
    ``<grad[i], x[j]>`` and the product with ``A^T`` share each gathered row ``grad[i]``. First derivatives
    only."""
    from .cpu_kernels import load

    grads = load().csr_spmm_backward(t_crow, t_col, t_perm, values.detach(), x.detach(), grad.detach(), need_values,
                                     need_x)
    return [g if g is not None else x.new_empty(0) for g in grads]


@csr_spmm_backward.register_kernel("cuda")
def _(t_crow, t_col, t_perm, values, x, grad, need_values, need_x):
    from . import triton_kernels

    return triton_kernels.csr_spmm_backward(t_crow, t_col, t_perm, values, x, grad, need_values, need_x)


@csr_spmm_backward.register_fake
def _(t_crow, t_col, t_perm, values, x, grad, need_values, need_x):
    return [values.new_empty(values.shape if need_values else (0,)), x.new_empty(x.shape if need_x else (0,))]


def _spmm_backward(ctx, grad: Tensor):
    crow, col, values, x, t_crow, t_col, t_perm, t_perm_inv = ctx.saved_tensors
    grad_values: Optional[Tensor] = None
    grad_x: Optional[Tensor] = None
    need_values, need_x = ctx.needs_input_grad[2], ctx.needs_input_grad[3]
    if ((ctx.backend == CPP or (ctx.backend == TRITON and _triton_width(x.shape[-1]))) and values.dim() == 1
            and not torch.is_grad_enabled()):
        # one pass for both; a double backward (grad mode on) takes the differentiable composition below
        grad_values, grad_x = csr_spmm_backward(t_crow, t_col, t_perm, values, x, grad.contiguous(), need_values,
                                                need_x)
        return (None, None, grad_values if need_values else None, grad_x if need_x else None,
                None, None, None, None, None)
    if ctx.needs_input_grad[2]:
        grad_values = csr_sddmm(crow, col, grad, x, t_crow, t_col, t_perm, t_perm_inv)
    if ctx.needs_input_grad[3]:
        grad_x = csr_spmm(t_crow, t_col, gather_rows(values, t_perm), grad, crow, col, t_perm_inv, t_perm, ctx.backend)
    return None, None, grad_values, grad_x, None, None, None, None, None


def _sddmm_backward(ctx, grad: Tensor):
    crow, col, a, b, t_crow, t_col, t_perm, t_perm_inv = ctx.saved_tensors
    grad_a: Optional[Tensor] = None
    grad_b: Optional[Tensor] = None
    if ctx.needs_input_grad[2]:
        grad_a = csr_spmm(crow, col, grad, b, t_crow, t_col, t_perm, t_perm_inv)
    if ctx.needs_input_grad[3]:
        grad_b = csr_spmm(t_crow, t_col, gather_rows(grad, t_perm), a, crow, col, t_perm_inv, t_perm)
    return None, None, grad_a, grad_b, None, None, None, None


@torch.library.custom_op("beltrami::segment_softmax", mutates_args=())
def segment_softmax(scores: Tensor, index: Tensor, num_segments: int, offsets: Optional[Tensor] = None) -> Tensor:
    """Softmax of ``scores`` (``[E]`` or ``[E, H]``) within the segments ``index`` (``[E]``, values in
    ``[0, num_segments)``), shifted by each segment's maximum. ``offsets`` (``[num_segments + 1]``) says that
    ``index`` is sorted (CSR rows) and lets the reductions run over contiguous segments.

    Two ``[E, H]`` allocations in all: on the CPU a fresh tensor of this size costs more in page faults
    than the arithmetic on it."""
    if offsets is not None:
        seg_max = torch.segment_reduce(scores, "max", offsets=offsets, axis=0)
    else:
        seg_max = torch.full((num_segments,) + scores.shape[1:], -torch.inf, dtype=scores.dtype,
                             device=scores.device)
        seg_max.scatter_reduce_(0, _expand_index(index, scores), scores, "amax")
    out = gather_rows(seg_max, index)
    torch.sub(scores, out, out=out).exp_()
    return out.div_(gather_rows(segment_sum(out, index, num_segments, offsets), index))


@torch.library.custom_op("beltrami::segment_softmax_backward", mutates_args=())
def segment_softmax_backward(a: Tensor, grad: Tensor, index: Tensor, num_segments: int,
                             offsets: Optional[Tensor] = None) -> Tensor:
    """The gradient of ``segment_softmax`` given its output ``a``: ``a * (grad - sum_seg(a * grad))``."""
    ag = a * grad
    return ag.sub_(gather_rows(segment_sum(ag, index, num_segments, offsets), index).mul_(a))


def _expand_index(index: Tensor, like: Tensor) -> Tensor:
    return index.view((-1,) + (1,) * (like.dim() - 1)).expand_as(like)


def segment_sum(x: Tensor, index: Tensor, num_segments: int, offsets: Optional[Tensor] = None) -> Tensor:
    """Sums of ``x`` rows per segment. With ``offsets`` (sorted ``index``): ``segment_reduce``, which has no
    double backward; without: ``index_add`` into fresh zeros, differentiable to any order."""
    if offsets is not None:
        return torch.segment_reduce(x, "sum", offsets=offsets, axis=0)
    return x.new_zeros((num_segments,) + x.shape[1:]).index_add_(0, index, x)


@segment_softmax.register_fake
def _(scores, index, num_segments, offsets=None):
    # contiguous like the real output (gathered rows), whatever strides the compiler gave ``scores``
    return scores.new_empty(scores.shape)


@segment_softmax_backward.register_fake
def _(a, grad, index, num_segments, offsets=None):
    return a.new_empty(a.shape)


def _save_softmax(ctx, inputs, output) -> None:
    ctx.save_for_backward(output, inputs[1], inputs[3])
    ctx.num_segments = inputs[2]


def _softmax_backward(ctx, grad: Tensor):
    a, index, offsets = ctx.saved_tensors
    return segment_softmax_backward(a, grad, index, ctx.num_segments, offsets), None, None, None


def _save_softmax_backward(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], inputs[1], inputs[2], inputs[4])
    ctx.num_segments = inputs[3]


def _softmax_double_backward(ctx, v: Tensor):
    # y = a (g - G S(a g)) with S the segment sum and G its adjoint, the gather:
    # dL/dg = a (v - G S(a v)), the same backward again; dL/da = v (g - G S(a g)) - g G S(a v),
    # written with differentiable ops so that a third derivative exists as well.
    a, g, index, offsets = ctx.saved_tensors
    n = ctx.num_segments
    grad_g = segment_softmax_backward(a, v, index, n, offsets)
    seg_ag, seg_av = segment_sum(a * g, index, n), segment_sum(a * v, index, n)
    grad_a = v * (g - gather_rows(seg_ag, index)) - g * gather_rows(seg_av, index)
    return grad_a, grad_g, None, None, None


csr_spmm.register_autograd(_spmm_backward, setup_context=_save_spmm)
csr_sddmm.register_autograd(_sddmm_backward, setup_context=_save)
segment_softmax.register_autograd(_softmax_backward, setup_context=_save_softmax)
segment_softmax_backward.register_autograd(_softmax_double_backward, setup_context=_save_softmax_backward)
