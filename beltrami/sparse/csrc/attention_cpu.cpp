// Fused edge attention and aggregation on the CPU, the time-dependent Beltrami flow's A(z) z in one pass:
//
//   s[p, h] = scale * <k[i, h], q[j, h]>        for every stored entry p = (i, j) of row i, head h
//   a[p, h] = exp(s[p, h] - m[i, h]) / sum_{p' in row i} exp(s[p', h] - m[i, h])   (row softmax, m the max)
//   out[i]  = sum_{p in row i} mean_h(a[p, h]) * x[j]
//
// Why fused: composed from separate kernels (per-head sampled dense-dense products, a softmax, a head
// mean, a CSR product and their backward passes) the same computation reads the [E, H] scores a dozen times
// and gathers the rows of q and x once per head and per kernel; on graphs of ogbn-arxiv's size those gathers
// come from DRAM. Here a row of q and a row of x are fetched once per edge in the forward; the backward makes
// one pass over the rows (the gradients of k and of the scores) and one over the columns, through the
// transpose (the gradients of q and x, gathered rather than scattered, so threads never write the same row).
#include "kernels.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

namespace {

using beltrami::dot;
using beltrami::kPrefetchAhead;
using beltrami::prefetch_row;

template <typename scalar_t>
void forward_rows(const int64_t* crow, const int64_t* col, const scalar_t* k, const scalar_t* q, const scalar_t* x,
                  scalar_t scale, scalar_t* out, scalar_t* att, int64_t n, int64_t heads, int64_t kd, int64_t d) {
  const int64_t nnz = crow[n];
  const int64_t hk = heads * kd;
  const scalar_t inv_heads = scalar_t(1) / static_cast<scalar_t>(heads);
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> row_max(heads), row_sum(heads);
    for (int64_t i = begin; i < end; ++i) {
      scalar_t* oi = out + i * d;
      for (int64_t c = 0; c < d; ++c) oi[c] = scalar_t(0);
      const int64_t start = crow[i], stop = crow[i + 1];
      if (start == stop) continue;
      const scalar_t* ki = k + i * hk;
      for (int64_t h = 0; h < heads; ++h) row_max[h] = -std::numeric_limits<scalar_t>::infinity();
      for (int64_t p = start; p < stop; ++p) {  // scores, gathering one row of q per edge
        if (p + kPrefetchAhead < nnz) {  // x too: the aggregation below then finds this row's x in cache
          prefetch_row(q + col[p + kPrefetchAhead] * hk, hk);
          prefetch_row(x + col[p + kPrefetchAhead] * d, d);
        }
        const scalar_t* qj = q + col[p] * hk;
        scalar_t* ap = att + p * heads;
        for (int64_t h = 0; h < heads; ++h) {
          ap[h] = dot(ki + h * kd, qj + h * kd, kd) * scale;
          row_max[h] = std::max(row_max[h], ap[h]);
        }
      }
      for (int64_t h = 0; h < heads; ++h) row_sum[h] = 0;
      for (int64_t p = start; p < stop; ++p) {
        scalar_t* ap = att + p * heads;
        for (int64_t h = 0; h < heads; ++h) {
          ap[h] = std::exp(ap[h] - row_max[h]);
          row_sum[h] += ap[h];
        }
      }
      for (int64_t h = 0; h < heads; ++h) row_sum[h] = scalar_t(1) / row_sum[h];
      for (int64_t p = start; p < stop; ++p) {  // normalise, then aggregate one row of x per edge
        scalar_t* ap = att + p * heads;
        scalar_t w = 0;
        for (int64_t h = 0; h < heads; ++h) {
          ap[h] *= row_sum[h];
          w += ap[h];
        }
        w *= inv_heads;
        const scalar_t* xj = x + col[p] * d;
#pragma omp simd
        for (int64_t c = 0; c < d; ++c) oi[c] += w * xj[c];
      }
    }
  });
}

// Over the rows: da[p] = <g[i], x[j]> / H (the head mean spreads the weight's gradient evenly),
// ds[p, h] = a[p, h] (da[p] - sum_{p' in row i} a[p', h] da[p']) (softmax backward), and
// grad k[i, h] = scale * sum_p ds[p, h] q[j, h]. ds is kept for the column pass.
template <typename scalar_t>
void backward_rows(const int64_t* crow, const int64_t* col, const scalar_t* q, const scalar_t* x,
                   const scalar_t* att, const scalar_t* grad, scalar_t scale, scalar_t* ds, scalar_t* grad_k,
                   int64_t n, int64_t heads, int64_t kd, int64_t d) {
  const int64_t nnz = crow[n];
  const int64_t hk = heads * kd;
  const scalar_t inv_heads = scalar_t(1) / static_cast<scalar_t>(heads);
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> acc(heads);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t start = crow[i], stop = crow[i + 1];
      const scalar_t* gi = grad + i * d;
      for (int64_t h = 0; h < heads; ++h) acc[h] = 0;
      for (int64_t p = start; p < stop; ++p) {
        if (p + kPrefetchAhead < nnz) {  // q too, for the gradient of k below
          prefetch_row(x + col[p + kPrefetchAhead] * d, d);
          prefetch_row(q + col[p + kPrefetchAhead] * hk, hk);
        }
        const scalar_t* xj = x + col[p] * d;
        const scalar_t da = dot(gi, xj, d) * inv_heads;
        for (int64_t h = 0; h < heads; ++h) {
          ds[p * heads + h] = att[p * heads + h] * da;
          acc[h] += ds[p * heads + h];
        }
      }
      for (int64_t p = start; p < stop; ++p)
        for (int64_t h = 0; h < heads; ++h) ds[p * heads + h] -= att[p * heads + h] * acc[h];
      scalar_t* gk = grad_k + i * hk;
      for (int64_t c = 0; c < hk; ++c) gk[c] = 0;
      for (int64_t p = start; p < stop; ++p) {
        const scalar_t* qj = q + col[p] * hk;
        for (int64_t h = 0; h < heads; ++h) {
          const scalar_t w = ds[p * heads + h] * scale;
#pragma omp simd
          for (int64_t c = 0; c < kd; ++c) gk[h * kd + c] += w * qj[h * kd + c];
        }
      }
    }
  });
}

// Over the columns, through the transpose (t_perm[p'] is the entry of A stored at position p' of A^T):
// grad q[j, h] = scale * sum_{i: (i, j) in A} ds[(i, j), h] k[i, h] and
// grad x[j] = sum_{i: (i, j) in A} mean_h(a[(i, j), h]) g[i].
template <typename scalar_t>
void backward_cols(const int64_t* t_crow, const int64_t* t_col, const int64_t* t_perm, const scalar_t* k,
                   const scalar_t* att, const scalar_t* ds, const scalar_t* grad, scalar_t scale, scalar_t* grad_q,
                   scalar_t* grad_x, int64_t n, int64_t heads, int64_t kd, int64_t d, bool need_kq, bool need_x) {
  const int64_t nnz = t_crow[n];
  const int64_t hk = heads * kd;
  const scalar_t inv_heads = scalar_t(1) / static_cast<scalar_t>(heads);
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      scalar_t* gq = need_kq ? grad_q + j * hk : nullptr;
      scalar_t* gx = need_x ? grad_x + j * d : nullptr;
      if (need_kq) for (int64_t c = 0; c < hk; ++c) gq[c] = 0;
      if (need_x) for (int64_t c = 0; c < d; ++c) gx[c] = 0;
      const int64_t stop = t_crow[j + 1];
      for (int64_t p = t_crow[j]; p < stop; ++p) {
        if (p + kPrefetchAhead < nnz) {
          const int64_t ahead = t_col[p + kPrefetchAhead];
          if (need_x) prefetch_row(grad + ahead * d, d);
          const int64_t e_ahead = t_perm[p + kPrefetchAhead];
          __builtin_prefetch(att + e_ahead * heads);
          if (need_kq) {
            prefetch_row(k + ahead * hk, hk);
            __builtin_prefetch(ds + e_ahead * heads);
          }
        }
        const int64_t e = t_perm[p], i = t_col[p];
        if (need_x) {
          scalar_t w = 0;
          for (int64_t h = 0; h < heads; ++h) w += att[e * heads + h];
          w *= inv_heads;
          const scalar_t* gi = grad + i * d;
#pragma omp simd
          for (int64_t c = 0; c < d; ++c) gx[c] += w * gi[c];
        }
        if (need_kq) {
          const scalar_t* ki = k + i * hk;
          for (int64_t h = 0; h < heads; ++h) {
            const scalar_t w = ds[e * heads + h] * scale;
#pragma omp simd
            for (int64_t c = 0; c < kd; ++c) gq[h * kd + c] += w * ki[h * kd + c];
          }
        }
      }
    }
  });
}

void check_inputs(const torch::Tensor& crow, const torch::Tensor& col, const torch::Tensor& k,
                  const torch::Tensor& q, const torch::Tensor& x) {
  for (const auto* t : {&crow, &col, &k, &q, &x})
    TORCH_CHECK(t->device().is_cpu(), "attention_spmm (C++ CPU kernel): every tensor must be on the CPU");
  TORCH_CHECK(crow.scalar_type() == at::kLong && col.scalar_type() == at::kLong,
              "attention_spmm (C++ CPU kernel): crow and col must be int64");
  TORCH_CHECK(k.dim() == 3 && q.sizes() == k.sizes(), "attention_spmm (C++ CPU kernel): k and q must both be "
              "[N, H, K], got ", k.sizes(), " and ", q.sizes());
  TORCH_CHECK(x.dim() == 2 && x.size(0) == k.size(0) && crow.numel() == k.size(0) + 1,
              "attention_spmm (C++ CPU kernel): x [N, D] and crow [N + 1] must match k's N = ", k.size(0),
              ", got x ", x.sizes(), " and crow of ", crow.numel());
  TORCH_CHECK(k.scalar_type() == x.scalar_type() && q.scalar_type() == x.scalar_type(),
              "attention_spmm (C++ CPU kernel): k, q and x must share a dtype");
}

}  // namespace

std::tuple<torch::Tensor, torch::Tensor> attention_spmm(const torch::Tensor& crow, const torch::Tensor& col,
                                                        const torch::Tensor& k, const torch::Tensor& q,
                                                        const torch::Tensor& x, double scale) {
  check_inputs(crow, col, k, q, x);
  const auto crow_c = crow.contiguous(), col_c = col.contiguous();
  const auto k_c = k.contiguous(), q_c = q.contiguous(), x_c = x.contiguous();
  const int64_t n = k_c.size(0), heads = k_c.size(1), kd = k_c.size(2), d = x_c.size(1);
  auto out = torch::empty({n, d}, x_c.options());
  auto att = torch::empty({col_c.numel(), heads}, x_c.options());
  AT_DISPATCH_FLOATING_TYPES(x_c.scalar_type(), "attention_spmm_cpu", [&] {
    forward_rows<scalar_t>(crow_c.data_ptr<int64_t>(), col_c.data_ptr<int64_t>(), k_c.data_ptr<scalar_t>(),
                           q_c.data_ptr<scalar_t>(), x_c.data_ptr<scalar_t>(), static_cast<scalar_t>(scale),
                           out.data_ptr<scalar_t>(), att.data_ptr<scalar_t>(), n, heads, kd, d);
  });
  return {out, att};
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> attention_spmm_backward(
    const torch::Tensor& crow, const torch::Tensor& col, const torch::Tensor& t_crow, const torch::Tensor& t_col,
    const torch::Tensor& t_perm, const torch::Tensor& k, const torch::Tensor& q, const torch::Tensor& x,
    const torch::Tensor& att, const torch::Tensor& grad, double scale, bool need_kq, bool need_x) {
  check_inputs(crow, col, k, q, x);
  TORCH_CHECK(grad.sizes() == x.sizes() && att.dim() == 2 && att.size(0) == col.numel() && att.size(1) == k.size(1),
              "attention_spmm_backward (C++ CPU kernel): grad must be [N, D] and att [E, H]");
  const auto crow_c = crow.contiguous(), col_c = col.contiguous(), t_crow_c = t_crow.contiguous();
  const auto t_col_c = t_col.contiguous(), t_perm_c = t_perm.contiguous();
  const auto k_c = k.contiguous(), q_c = q.contiguous(), x_c = x.contiguous();
  const auto att_c = att.contiguous(), grad_c = grad.contiguous();
  const int64_t n = k_c.size(0), heads = k_c.size(1), kd = k_c.size(2), d = x_c.size(1);
  torch::Tensor grad_k, grad_q, grad_x;
  if (need_kq) {
    grad_k = torch::empty_like(k_c);
    grad_q = torch::empty_like(q_c);
  }
  if (need_x) grad_x = torch::empty_like(x_c);
  AT_DISPATCH_FLOATING_TYPES(x_c.scalar_type(), "attention_spmm_backward_cpu", [&] {
    const auto s = static_cast<scalar_t>(scale);
    torch::Tensor ds;
    if (need_kq) {
      ds = torch::empty_like(att_c);
      backward_rows<scalar_t>(crow_c.data_ptr<int64_t>(), col_c.data_ptr<int64_t>(), q_c.data_ptr<scalar_t>(),
                              x_c.data_ptr<scalar_t>(), att_c.data_ptr<scalar_t>(), grad_c.data_ptr<scalar_t>(), s,
                              ds.data_ptr<scalar_t>(), grad_k.data_ptr<scalar_t>(), n, heads, kd, d);
    }
    backward_cols<scalar_t>(t_crow_c.data_ptr<int64_t>(), t_col_c.data_ptr<int64_t>(), t_perm_c.data_ptr<int64_t>(),
                            k_c.data_ptr<scalar_t>(), att_c.data_ptr<scalar_t>(),
                            need_kq ? ds.data_ptr<scalar_t>() : nullptr, grad_c.data_ptr<scalar_t>(), s,
                            need_kq ? grad_q.data_ptr<scalar_t>() : nullptr,
                            need_x ? grad_x.data_ptr<scalar_t>() : nullptr, n, heads, kd, d, need_kq, need_x);
  });
  return {grad_k, grad_q, grad_x};
}
