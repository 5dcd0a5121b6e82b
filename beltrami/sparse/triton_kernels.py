"""Sparse backend ``"triton"`` (CUDA tensors; the C++ kernels of ``"cpp"`` are its CPU counterpart): the
launchers of the Triton kernels in :mod:`beltrami.sparse.triton_jit` for the fused attention diffusion
(``beltrami::attention_diffusion``) and the CSR product with its one-pass backward (``beltrami::csr_spmm``,
``beltrami::csr_spmm_backward``).

The attention kernels compute what the C++ CPU kernel does (``csrc/attention_cpu.cpp``, whose comments give
the formulas): one program per CSR row computes the scores of its edges (a row of ``q`` gathered per
edge), their softmax per head and the weighted sum of the rows of ``x``; the backward makes one pass over
the rows (gradients of ``k``, of the scores and of ``alpha``) and one over the columns through the transpose
(gradients of ``q`` and ``x``, gathered, so no two programs write one row and no atomics are needed). The
C++ backward has since moved to three passes that gather ``x[j]`` once less per edge (1.14x on the CPU);
on the GPU this kernel already ran at half the copy bandwidth, and the three-pass form is untested there. Where
a pass rewrites a block of ``att`` or ``ds`` in place, a barrier separates the reads from the writes: an
element may be held by several threads, and without it a thread of another warp could read a value already
overwritten (seen on an H200 with 4 warps: the gradient of ``k`` off by 0.1). ``alpha`` and ``scale`` are
read from device tensors of ``x``'s dtype: no host synchronisation, and no float32 rounding of ``scale`` (a
Python float reaches a Triton kernel as float32).

The SpMM backward is the C++ one's too (``csrc/csr_spmm_cpu.cpp``): one pass over the columns computes both
``<grad[i], x[j]>`` and ``A^T grad`` from one gathered row ``grad[i]``.

Every kernel takes the edges of a row ``BLOCK_E`` at a time, one warp per row; heads, head width and
feature width are padded to powers of two and masked. Composed from torch's kernels, one evaluation of the
Beltrami function forward+backward stayed far from an H200's copy bandwidth at ogbn-arxiv's size
(``docs/measurements/2026-11-gpu-h200.md``): the ``[E, H]`` scores are read a dozen times and ``q`` and ``x`` gathered once
per head and per kernel. Here each is gathered once per pass.

Needs ``triton`` (shipped with PyTorch's CUDA wheels). ``TRITON_INTERPRET=1`` runs the kernels on CPU
tensors through Triton's interpreter, which is how the tests check them on a machine without a GPU.
"""
from __future__ import annotations

import functools
import importlib.util
from types import ModuleType
from typing import List, Tuple

import torch
from torch import Tensor

BLOCK_E = 16  # edges per step: a whole row for most graphs (ogbn-arxiv's mean degree is 13.7)
NUM_WARPS = 1  # per program (one CSR row): 5.1x the composed kernels' speed on an H200, against 2.5x with 4
MAX_WIDTH = 256  # widest feature rows taken: a program holds a block of BLOCK_E rows in its registers; wider
# rows take torch's kernels (SpMM) or the composed ones (attention), never spilled registers


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Whether Triton is importable (the kernels then run on CUDA tensors, or anywhere when interpreted).
    Asked once per process: every CUDA SpMM of backend "triton" asks, forward and backward, and the search
    through ``sys.path`` costs a good part of a small SpMM on a GPU."""
    return importlib.util.find_spec("triton") is not None


@functools.lru_cache(maxsize=None)
def _kernels() -> ModuleType:
    """The jitted kernels (:mod:`beltrami.sparse.triton_jit`), imported on first use so that importing this
    module needs no triton."""
    from . import triton_jit

    return triton_jit


def _sizes(kq: Tensor, x: Tensor) -> dict:
    import triton

    h, k, d = kq.shape[2], kq.shape[3], x.shape[1]
    return dict(H=h, K=k, D=d, BH=triton.next_power_of_2(h), BK=triton.next_power_of_2(k),
                BD=triton.next_power_of_2(d), BE=BLOCK_E, num_warps=NUM_WARPS)


def attention_diffusion(crow: Tensor, col: Tensor, kq: Tensor, x: Tensor, alpha: Tensor,
                        scale: float) -> Tuple[Tensor, Tensor]:
    """``(alpha (A x - x), att)``: ``kq`` ``[N, 2, H, K]``, ``x`` ``[N, D]``, ``alpha`` one element ->
    ``[N, D]`` and the per-head attention ``[E, H]``."""
    kq, x = kq.detach().contiguous(), x.detach().contiguous()
    n = kq.shape[0]
    out = torch.empty_like(x)
    att = x.new_empty((col.shape[0], kq.shape[2]))
    if n:
        _kernels().forward_rows[(n,)](crow, col, kq, x, alpha.detach().reshape(1).to(x.dtype), out, att,
                           x.new_full((1,), scale), **_sizes(kq, x))
    return out, att


def attention_diffusion_backward(crow: Tensor, col: Tensor, t_crow: Tensor, t_col: Tensor, t_perm: Tensor,
                                 kq: Tensor, x: Tensor, alpha: Tensor, att: Tensor, grad: Tensor, scale: float,
                                 need_kq: bool, need_x: bool, need_alpha: bool) -> List[Tensor]:
    """``[grad_kq, grad_x, grad_alpha]`` (empty tensors where not needed) of :func:`attention_diffusion`."""
    kernels = _kernels()
    kq, x, att, grad = (t.detach().contiguous() for t in (kq, x, att, grad))
    n = kq.shape[0]
    a = alpha.detach().reshape(1).to(x.dtype)
    unused = x.new_empty(1)  # stands for the outputs not asked for (a real pointer; the kernel skips them)
    grad_kq = torch.empty_like(kq) if need_kq else unused
    ds = torch.empty_like(att) if need_kq else unused
    grad_x = torch.empty_like(x) if need_x else unused
    terms = x.new_empty(n, dtype=torch.float64) if need_alpha else unused
    sizes = _sizes(kq, x)
    scale_t = x.new_full((1,), scale)
    if n and (need_kq or need_alpha):
        kernels.backward_rows[(n,)](crow, col, kq, x, a, att, grad, ds, grad_kq, terms, scale_t, NEED_KQ=need_kq,
                            NEED_ALPHA=need_alpha, **sizes)
    if n and (need_kq or need_x):
        kernels.backward_cols[(n,)](t_crow, t_col, t_perm, kq, a, att, ds, grad, grad_kq, grad_x, scale_t,
                            NEED_KQ=need_kq,
                            NEED_X=need_x, **sizes)
    grad_alpha = terms.sum().to(x.dtype).reshape(alpha.shape) if need_alpha else alpha.new_empty(0)
    return [grad_kq if need_kq else kq.new_empty(0), grad_x if need_x else x.new_empty(0), grad_alpha]


def _spmm_sizes(x: Tensor) -> dict:
    import triton

    return dict(D=x.shape[1], BD=triton.next_power_of_2(x.shape[1]), BE=BLOCK_E, num_warps=NUM_WARPS)


def csr_spmm(crow: Tensor, col: Tensor, values: Tensor, x: Tensor) -> Tensor:
    """``A(values) @ x``: ``values`` ``[E]``, ``x`` ``[N, D]`` -> ``[N, D]``, one program per row."""
    values, x = values.detach().contiguous(), x.detach().contiguous()
    n = crow.shape[0] - 1
    out = x.new_empty((n, x.shape[1]))
    if n:
        _kernels().spmm_rows[(n,)](crow, col, values, x, out, **_spmm_sizes(x))
    return out


def csr_spmm_backward(t_crow: Tensor, t_col: Tensor, t_perm: Tensor, values: Tensor, x: Tensor, grad: Tensor,
                      need_values: bool, need_x: bool) -> List[Tensor]:
    """``[grad_values, grad_x]`` of :func:`csr_spmm` in one pass over ``A^T`` (empty where not needed):
    ``<grad[i], x[j]>`` and ``A^T grad`` share each gathered row ``grad[i]``."""
    values, x, grad = (t.detach().contiguous() for t in (values, x, grad))
    n = x.shape[0]
    unused = x.new_empty(1)
    grad_values = torch.empty_like(values) if need_values else unused
    grad_x = torch.empty_like(x) if need_x else unused
    if n and (need_values or need_x):
        _kernels().spmm_backward_cols[(n,)](t_crow, t_col, t_perm, values, x, grad, grad_values, grad_x,
                                            NEED_VALUES=need_values, NEED_X=need_x, **_spmm_sizes(x))
    return [grad_values if need_values else values.new_empty(0), grad_x if need_x else x.new_empty(0)]
