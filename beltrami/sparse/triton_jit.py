"""The Triton kernels of backend ``"triton"`` (see :mod:`beltrami.sparse.triton_kernels`, which launches them).
Importing this module imports triton: :mod:`beltrami.sparse.triton_kernels` does so on first use only.

One program per CSR row (``forward_rows``, ``backward_rows``, ``spmm_rows``) or per CSR column, i.e. row of
the transpose (``backward_cols``, ``spmm_backward_cols``), edges ``BE`` at a time; heads, head width and
channels are padded to the powers of two ``BH``, ``BK``, ``BD`` and masked."""
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
