"""The CUDA half of sparse backend ``"cpp"``, written in Triton: the fused attention diffusion
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
from typing import Callable, List, NamedTuple, Tuple

import torch
from torch import Tensor

BLOCK_E = 16  # edges per step: a whole row for most graphs (ogbn-arxiv's mean degree is 13.7)
NUM_WARPS = 1  # per program (one CSR row): 5.1x the composed kernels' speed on an H200, against 2.5x with 4
MAX_WIDTH = 256  # widest feature rows taken: a program holds a block of BLOCK_E rows in its registers; wider
# rows take torch's kernels (SpMM) or the composed ones (attention), never spilled registers


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Whether Triton is importable (the kernels then run on CUDA tensors, or anywhere when interpreted).
    Asked once per process: the search through ``sys.path`` takes ~40 us, and every CUDA SpMM of backend
    "cpp" asks, forward and backward (a 20K-node SpMM forward takes ~90 us on an H200)."""
    return importlib.util.find_spec("triton") is not None


class _Kernels(NamedTuple):
    forward_rows: Callable
    backward_rows: Callable
    backward_cols: Callable
    spmm_rows: Callable
    spmm_backward_cols: Callable


@functools.lru_cache(maxsize=None)
def _kernels() -> _Kernels:
    """The jitted kernels, defined on first use so that importing this module needs no triton."""
    import triton
    import triton.language as tl

    @triton.jit
    def forward_rows(crow, col, kq, x, alpha_ptr, out, att, scale_ptr, H: tl.constexpr, K: tl.constexpr,
                     D: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr, BD: tl.constexpr, BE: tl.constexpr):
        i = tl.program_id(0).to(tl.int64)
        start = tl.load(crow + i)
        stop = tl.load(crow + i + 1)
        hs, ks, cs, es = tl.arange(0, BH), tl.arange(0, BK), tl.arange(0, BD), tl.arange(0, BE)
        hk = hs[:, None] * K + ks[None, :]
        hk_mask = (hs[:, None] < H) & (ks[None, :] < K)
        h_mask, c_mask = hs < H, cs < D
        k_i = tl.load(kq + i * (2 * H * K) + hk, mask=hk_mask, other=0.0)  # [BH, BK]
        scale = tl.load(scale_ptr)
        m = tl.full([BH], float("-inf"), dtype=k_i.dtype)
        total = tl.zeros([BH], dtype=k_i.dtype)
        # pass 1: raw scores into att, the running maximum and sum of exponentials per head
        p0 = start
        while p0 < stop:  # a while loop: Triton's interpreter cannot range() over loaded bounds
            p = p0 + es
            e_mask = p < stop
            j = tl.load(col + p, mask=e_mask, other=0)
            q = tl.load(kq + j[:, None, None] * (2 * H * K) + H * K + hk[None, :, :],
                        mask=e_mask[:, None, None] & hk_mask[None, :, :], other=0.0)  # [BE, BH, BK]
            s = tl.sum(q * k_i[None, :, :], axis=2) * scale  # [BE, BH]; padded heads stay 0, never -inf
            s = tl.where(e_mask[:, None], s, float("-inf"))
            m_new = tl.maximum(m, tl.max(s, axis=0))
            total = total * tl.exp(m - m_new) + tl.sum(tl.exp(s - m_new[None, :]), axis=0)
            m = m_new
            tl.store(att + p[:, None] * H + hs[None, :], s, mask=e_mask[:, None] & h_mask[None, :])
            p0 += BE
        tl.debug_barrier()  # the scores stored above are read back by other threads of this program
        inv_total = 1.0 / total
        acc = tl.zeros([BD], dtype=k_i.dtype)
        # pass 2: normalise, store, aggregate one row of x per edge with the head-mean weight
        p0 = start
        while p0 < stop:  # a while loop: Triton's interpreter cannot range() over loaded bounds
            p = p0 + es
            e_mask = p < stop
            eh_mask = e_mask[:, None] & h_mask[None, :]
            s = tl.load(att + p[:, None] * H + hs[None, :], mask=eh_mask, other=0.0)
            tl.debug_barrier()  # every thread has read this block before any overwrites it
            a = tl.where(eh_mask, tl.exp(s - m[None, :]) * inv_total[None, :], 0.0)
            tl.store(att + p[:, None] * H + hs[None, :], a, mask=eh_mask)
            w = tl.sum(a, axis=1) / H  # [BE]
            j = tl.load(col + p, mask=e_mask, other=0)
            xj = tl.load(x + j[:, None] * D + cs[None, :], mask=e_mask[:, None] & c_mask[None, :], other=0.0)
            acc += tl.sum(w[:, None] * xj, axis=0)
            p0 += BE
        alpha = tl.load(alpha_ptr)
        xi = tl.load(x + i * D + cs, mask=c_mask, other=0.0)
        tl.store(out + i * D + cs, alpha * (acc - xi), mask=c_mask)  # an empty row gives -alpha x[i]

    @triton.jit
    def backward_rows(crow, col, kq, x, alpha_ptr, att, grad, ds, grad_kq, alpha_terms, scale_ptr,
                      H: tl.constexpr, K: tl.constexpr, D: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr,
                      BD: tl.constexpr, BE: tl.constexpr, NEED_KQ: tl.constexpr, NEED_ALPHA: tl.constexpr):
        i = tl.program_id(0).to(tl.int64)
        start = tl.load(crow + i)
        stop = tl.load(crow + i + 1)
        hs, ks, cs, es = tl.arange(0, BH), tl.arange(0, BK), tl.arange(0, BD), tl.arange(0, BE)
        hk = hs[:, None] * K + ks[None, :]
        hk_mask = (hs[:, None] < H) & (ks[None, :] < K)
        h_mask, c_mask = hs < H, cs < D
        alpha = tl.load(alpha_ptr)
        g_i = tl.load(grad + i * D + cs, mask=c_mask, other=0.0)
        acc = tl.zeros([BH], dtype=g_i.dtype)  # sum_p a[p, h] da[p]
        ax = tl.zeros([BE], dtype=g_i.dtype)  # <g[i], (A x)[i]>, spread over the lanes of an edge block
        p0 = start
        while p0 < stop:  # a while loop: Triton's interpreter cannot range() over loaded bounds
            p = p0 + es
            e_mask = p < stop
            eh_mask = e_mask[:, None] & h_mask[None, :]
            j = tl.load(col + p, mask=e_mask, other=0)
            xj = tl.load(x + j[:, None] * D + cs[None, :], mask=e_mask[:, None] & c_mask[None, :], other=0.0)
            gx = tl.sum(g_i[None, :] * xj, axis=1)  # [BE]
            a = tl.load(att + p[:, None] * H + hs[None, :], mask=eh_mask, other=0.0)
            if NEED_ALPHA:
                ax += tl.sum(a, axis=1) / H * gx
            if NEED_KQ:
                d = a * (alpha * gx / H)[:, None]
                tl.store(ds + p[:, None] * H + hs[None, :], d, mask=eh_mask)
                acc += tl.sum(d, axis=0)
            p0 += BE
        if NEED_ALPHA:
            xi = tl.load(x + i * D + cs, mask=c_mask, other=0.0)
            tl.store(alpha_terms + i, (tl.sum(ax, axis=0) - tl.sum(g_i * xi, axis=0)).to(tl.float64))
        if NEED_KQ:
            tl.debug_barrier()  # ds stored above is read back by other threads of this program
            scale = tl.load(scale_ptr)
            gk = tl.zeros([BH, BK], dtype=g_i.dtype)
            p0 = start
            while p0 < stop:  # a while loop: Triton's interpreter cannot range() over loaded bounds
                p = p0 + es
                e_mask = p < stop
                eh_mask = e_mask[:, None] & h_mask[None, :]
                a = tl.load(att + p[:, None] * H + hs[None, :], mask=eh_mask, other=0.0)
                d = tl.load(ds + p[:, None] * H + hs[None, :], mask=eh_mask, other=0.0) - a * acc[None, :]
                tl.debug_barrier()  # every thread has read this block before any overwrites it
                tl.store(ds + p[:, None] * H + hs[None, :], d, mask=eh_mask)
                j = tl.load(col + p, mask=e_mask, other=0)
                q = tl.load(kq + j[:, None, None] * (2 * H * K) + H * K + hk[None, :, :],
                            mask=e_mask[:, None, None] & hk_mask[None, :, :], other=0.0)
                gk += tl.sum(d[:, :, None] * q, axis=0)
                p0 += BE
            tl.store(grad_kq + i * (2 * H * K) + hk, gk * scale, mask=hk_mask)

    @triton.jit
    def backward_cols(t_crow, t_col, t_perm, kq, alpha_ptr, att, ds, grad, grad_kq, grad_x, scale_ptr,
                      H: tl.constexpr, K: tl.constexpr, D: tl.constexpr, BH: tl.constexpr, BK: tl.constexpr,
                      BD: tl.constexpr, BE: tl.constexpr, NEED_KQ: tl.constexpr, NEED_X: tl.constexpr):
        j = tl.program_id(0).to(tl.int64)
        start = tl.load(t_crow + j)
        stop = tl.load(t_crow + j + 1)
        hs, ks, cs, es = tl.arange(0, BH), tl.arange(0, BK), tl.arange(0, BD), tl.arange(0, BE)
        hk = hs[:, None] * K + ks[None, :]
        hk_mask = (hs[:, None] < H) & (ks[None, :] < K)
        h_mask, c_mask = hs < H, cs < D
        g_j = tl.load(grad + j * D + cs, mask=c_mask, other=0.0)
        gx = tl.zeros([BD], dtype=g_j.dtype)
        gq = tl.zeros([BH, BK], dtype=g_j.dtype)
        p0 = start
        while p0 < stop:  # a while loop: Triton's interpreter cannot range() over loaded bounds
            p = p0 + es
            e_mask = p < stop
            eh_mask = e_mask[:, None] & h_mask[None, :]
            e = tl.load(t_perm + p, mask=e_mask, other=0)  # the entry (i, j) of A stored at p of A^T
            i = tl.load(t_col + p, mask=e_mask, other=0)
            if NEED_X:
                w = tl.sum(tl.load(att + e[:, None] * H + hs[None, :], mask=eh_mask, other=0.0), axis=1) / H
                gi = tl.load(grad + i[:, None] * D + cs[None, :], mask=e_mask[:, None] & c_mask[None, :],
                             other=0.0)
                gx += tl.sum(w[:, None] * gi, axis=0)
            if NEED_KQ:
                d = tl.load(ds + e[:, None] * H + hs[None, :], mask=eh_mask, other=0.0)
                k = tl.load(kq + i[:, None, None] * (2 * H * K) + hk[None, :, :],
                            mask=e_mask[:, None, None] & hk_mask[None, :, :], other=0.0)
                gq += tl.sum(d[:, :, None] * k, axis=0)
            p0 += BE
        if NEED_X:
            alpha = tl.load(alpha_ptr)
            tl.store(grad_x + j * D + cs, alpha * (gx - g_j), mask=c_mask)
        if NEED_KQ:
            tl.store(grad_kq + j * (2 * H * K) + H * K + hk, gq * tl.load(scale_ptr), mask=hk_mask)

    @triton.jit
    def spmm_rows(crow, col, values, x, out, D: tl.constexpr, BD: tl.constexpr, BE: tl.constexpr):
        i = tl.program_id(0).to(tl.int64)
        start = tl.load(crow + i)
        stop = tl.load(crow + i + 1)
        cs, es = tl.arange(0, BD), tl.arange(0, BE)
        c_mask = cs < D
        acc = tl.zeros([BD], dtype=values.dtype.element_ty)
        p0 = start
        while p0 < stop:  # a while loop: Triton's interpreter cannot range() over loaded bounds
            p = p0 + es
            e_mask = p < stop
            j = tl.load(col + p, mask=e_mask, other=0)
            v = tl.load(values + p, mask=e_mask, other=0.0)
            xj = tl.load(x + j[:, None] * D + cs[None, :], mask=e_mask[:, None] & c_mask[None, :], other=0.0)
            acc += tl.sum(v[:, None] * xj, axis=0)
            p0 += BE
        tl.store(out + i * D + cs, acc, mask=c_mask)

    @triton.jit
    def spmm_backward_cols(t_crow, t_col, t_perm, values, x, grad, grad_values, grad_x, D: tl.constexpr,
                           BD: tl.constexpr, BE: tl.constexpr, NEED_VALUES: tl.constexpr, NEED_X: tl.constexpr):
        j = tl.program_id(0).to(tl.int64)
        start = tl.load(t_crow + j)
        stop = tl.load(t_crow + j + 1)
        cs, es = tl.arange(0, BD), tl.arange(0, BE)
        c_mask = cs < D
        x_j = tl.load(x + j * D + cs, mask=c_mask, other=0.0)
        gx = tl.zeros([BD], dtype=x_j.dtype)
        p0 = start
        while p0 < stop:
            p = p0 + es
            e_mask = p < stop
            e = tl.load(t_perm + p, mask=e_mask, other=0)  # the entry (i, j) of A stored at p of A^T
            i = tl.load(t_col + p, mask=e_mask, other=0)
            gi = tl.load(grad + i[:, None] * D + cs[None, :], mask=e_mask[:, None] & c_mask[None, :], other=0.0)
            if NEED_VALUES:
                tl.store(grad_values + e, tl.sum(gi * x_j[None, :], axis=1), mask=e_mask)
            if NEED_X:
                v = tl.load(values + e, mask=e_mask, other=0.0)
                gx += tl.sum(v[:, None] * gi, axis=0)
            p0 += BE
        if NEED_X:
            tl.store(grad_x + j * D + cs, gx, mask=c_mask)

    return _Kernels(forward_rows, backward_rows, backward_cols, spmm_rows, spmm_backward_cols)


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
