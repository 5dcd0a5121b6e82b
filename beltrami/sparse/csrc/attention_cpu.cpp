// Fused attention diffusion on the CPU, the time-dependent Beltrami flow's right-hand side in one pass:
//
//   s[p, h] = scale * <k[i, h], q[j, h]>        for every stored entry p = (i, j) of row i, head h
//   a[p, h] = exp(s[p, h] - m[i, h]) / sum_{p' in row i} exp(s[p', h] - m[i, h])   (row softmax, m the max)
//   out[i]  = alpha * (sum_{p in row i} mean_h(a[p, h]) * x[j] - x[i])
//
// with the keys and queries of a node side by side in one row of kq [N, 2, H, K] (one matrix product makes
// both). Why fused: composed from separate kernels (per-head sampled dense-dense products, a softmax, a head
// mean, a CSR product, the relaxation alpha (A x - x) and their backward passes) the same computation reads
// the [E, H] scores a dozen times, gathers the rows of q and x once per head and per kernel, and streams
// [N, D] temporaries through memory; on graphs of ogbn-arxiv's size those gathers come from DRAM. Here a row
// of q and a row of x are fetched once per edge in the forward; the backward makes three passes (see
// backward_grad_cols below), gathering rather than scattering, so threads never write the same row.
#include "kernels.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

using beltrami::dot;
using beltrami::prefetch_gather;

// The attention's head shape, heads H and key width K per head, as compile-time constants (0: known at run
// time only). The kernels are compiled with both fixed for the shapes in use: the library's default (1 head
// of 64), the fast preset's 4 of 8 and the paper's tuned presets (8 of 16, 8 of 4, 1 of 16, 4 of 2, 4 of 16,
// 2 of 16), in float; every other shape and double run the generic build. With the shape fixed, the loops
// over heads and key entries unroll, a row's per-head maxima, sums and gradient accumulators stay in
// registers, and the prefetches of a gathered row of keys or queries are a fixed few instructions. At arxiv
// size with 4 heads of 8, against the head count alone fixed: forward 51 -> 31 ms, backward 81 -> 62 ms.
template <int H, int K>
struct Shape {
  static constexpr int heads = H, width = K;
};
using FixedShapes = std::tuple<Shape<1, 64>, Shape<4, 8>, Shape<8, 16>, Shape<8, 4>, Shape<1, 16>, Shape<4, 2>,
                               Shape<4, 16>, Shape<2, 16>>;

template <typename F, typename... S>
bool call_fixed(int64_t heads, int64_t kd, F& fn, std::tuple<S...>*) {
  return ((heads == S::heads && kd == S::width && (fn(S()), true)) || ...);
}

template <typename... S>
std::vector<std::tuple<int64_t, int64_t>> shape_list(std::tuple<S...>*) {
  return {{S::heads, S::width}...};
}

// Calls fn(Shape<H, K>()) with the shape fixed where it is one of FixedShapes and scalar_t is float,
// fn(Shape<0, 0>()) otherwise.
template <typename scalar_t, typename F>
void with_shape(int64_t heads, int64_t kd, F&& fn) {
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (call_fixed(heads, kd, fn, static_cast<FixedShapes*>(nullptr))) return;
  }
  fn(Shape<0, 0>());
}

// kPerHead numbers per head for a thread: on the stack when the head count is fixed, on the heap otherwise.
template <typename scalar_t, int kHeads, int kPerHead>
struct HeadScratch {
  explicit HeadScratch(int64_t heads) : heap(kHeads ? 0 : heads * kPerHead) {}
  scalar_t* data() { return kHeads ? fixed : heap.data(); }
  scalar_t fixed[kHeads ? kHeads * kPerHead : 1];
  std::vector<scalar_t> heap;
};

// a[k] = exp(a[k]) for the shifted scores of a row (all <= 0). In float a polynomial over the row's [deg, H]
// block as one flat loop, which the compiler vectorises: std::exp is a library call per number, and the
// exponentials took 8 of the forward's 57 ms at arxiv size. Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2
// (n rounded to nearest by adding and subtracting 1.5 * 2^23), exp(r) by a degree-7 polynomial, about one
// ulp; 2^n goes into the exponent bits. x below -87 (where exp(x) drops under float's smallest normal)
// gives 2^-126 instead of a denormal or 0: next to the row's largest term, 1, it vanishes from the sum
// either way. A NaN stays NaN (the polynomial carries it). Double keeps std::exp, for gradcheck.
inline void exp_in_place(double* a, int64_t m) {
  for (int64_t k = 0; k < m; ++k) a[k] = std::exp(a[k]);
}
inline void exp_in_place(float* a, int64_t m) {
  for (int64_t k = 0; k < m; ++k) {
    const float x = a[k] < -87.0f ? -87.0f : a[k];
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    const float p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f)
                       * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r + r) + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float two_n;
    std::memcpy(&two_n, &bits, sizeof two_n);
    a[k] = p * two_n;
  }
}

template <typename scalar_t, int kHeads, int kWidth>
void forward_rows(const int64_t* crow, const int64_t* col, const scalar_t* kq, const scalar_t* x, scalar_t scale,
                  scalar_t alpha, scalar_t* out, scalar_t* att, int64_t n, int64_t heads_, int64_t kd_, int64_t d) {
  const int64_t heads = kHeads ? kHeads : heads_, kd = kWidth ? kWidth : kd_;
  const int64_t nnz = crow[n];
  const int64_t hk = heads * kd, row = 2 * hk;  // k[i] = kq + i * row, q[j] = kq + j * row + hk
  const scalar_t inv_heads = scalar_t(1) / static_cast<scalar_t>(heads);
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    HeadScratch<scalar_t, kHeads, 2> scratch(heads);
    scalar_t* row_max = scratch.data();
    scalar_t* row_sum = row_max + heads;
    for (int64_t i = begin; i < end; ++i) {
      scalar_t* oi = out + i * d;
      const scalar_t* xi = x + i * d;
      for (int64_t c = 0; c < d; ++c) oi[c] = scalar_t(0);
      const int64_t start = crow[i], stop = crow[i + 1];
      const scalar_t* ki = kq + i * row;
      for (int64_t h = 0; h < heads; ++h) row_max[h] = -std::numeric_limits<scalar_t>::infinity();
      for (int64_t p = start; p < stop; ++p) {  // scores, gathering one row of q per edge
        prefetch_gather(kq + hk, col, p, nnz, row, hk);
        prefetch_gather(x, col, p, nnz, d, d);  // x too: the aggregation below then finds this row's x in cache
        const scalar_t* qj = kq + col[p] * row + hk;
        scalar_t* ap = att + p * heads;
        for (int64_t h = 0; h < heads; ++h) {
          ap[h] = dot(ki + h * kd, qj + h * kd, kd) * scale;
          row_max[h] = std::max(row_max[h], ap[h]);
        }
      }
      for (int64_t p = start; p < stop; ++p)
        for (int64_t h = 0; h < heads; ++h) att[p * heads + h] -= row_max[h];
      exp_in_place(att + start * heads, (stop - start) * heads);
      for (int64_t h = 0; h < heads; ++h) row_sum[h] = 0;
      for (int64_t p = start; p < stop; ++p)
        for (int64_t h = 0; h < heads; ++h) row_sum[h] += att[p * heads + h];
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
#pragma omp simd
      for (int64_t c = 0; c < d; ++c) oi[c] = alpha * (oi[c] - xi[c]);  // an empty row gives -alpha x[i]
    }
  });
}

// The backward in three passes, with g the gradient of out and e[p] = alpha <g[i], x[j]> for p = (i, j):
//   1. over the columns, through the transpose (t_perm[p'] is the entry of A stored at position p' of A^T):
//      grad x[j] = alpha (sum_{i: (i, j) in A} mean_h(a[(i, j), h]) g[i] - g[j]), the weight gradients
//      da[p] = e[p] / H (the head mean spreads a weight's gradient evenly) and the terms of the gradient of
//      alpha, sum_j (sum_{(i, j)} mean_h(a[(i, j), h]) <g[i], x[j]> - <g[j], x[j]>), per column (summed
//      afterwards, in double). Both uses of g[i] share one fetch of that row, and x[j] is the pass's own row.
//   2. over the rows: ds[p, h] = a[p, h] (da[p] - sum_{p' in row i} a[p', h] da[p']) (softmax backward) and
//      grad k[i, h] = scale * sum_p ds[p, h] q[j, h].
//   3. over the columns again: grad q[j, h] = scale * sum_{i: (i, j) in A} ds[(i, j), h] k[i, h].
// Fetching rows from random places is the cost on graphs without locality: per edge this gathers g[i] (D
// numbers), q[j] and k[i] (H K each), where a row pass gathering x[j] and q[j] and a column pass gathering
// g[i] and k[i] fetched x[j] too. Threads own whole rows (or columns) of every output.
template <typename scalar_t, int kHeads>
void backward_grad_cols(const int64_t* t_crow, const int64_t* t_col, const int64_t* t_perm, const scalar_t* x,
                        const scalar_t* att, const scalar_t* grad, scalar_t alpha, scalar_t* da, scalar_t* grad_x,
                        double* alpha_terms, int64_t n, int64_t heads_, int64_t d) {
  const int64_t heads = kHeads ? kHeads : heads_;
  const int64_t nnz = t_crow[n];
  const scalar_t inv_heads = scalar_t(1) / static_cast<scalar_t>(heads);
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      scalar_t* gx = grad_x ? grad_x + j * d : nullptr;
      if (gx) for (int64_t c = 0; c < d; ++c) gx[c] = 0;
      const scalar_t* xj = x + j * d;
      scalar_t term = 0;  // sum over the column of mean_h(a) <g[i], x[j]>
      const int64_t stop = t_crow[j + 1];
      for (int64_t p = t_crow[j]; p < stop; ++p) {
        prefetch_gather(grad, t_col, p, nnz, d, d);
        prefetch_gather(att, t_perm, p, nnz, heads, heads);
        const int64_t e = t_perm[p];
        const scalar_t* gi = grad + t_col[p] * d;
        scalar_t w = 0;
        for (int64_t h = 0; h < heads; ++h) w += att[e * heads + h];
        w *= inv_heads;
        if (da || alpha_terms) {
          const scalar_t gxj = dot(gi, xj, d);
          if (da) da[e] = alpha * gxj * inv_heads;
          term += w * gxj;
        }
        if (gx) {
#pragma omp simd
          for (int64_t c = 0; c < d; ++c) gx[c] += w * gi[c];
        }
      }
      const scalar_t* gj = grad + j * d;
      if (gx) {
#pragma omp simd
        for (int64_t c = 0; c < d; ++c) gx[c] = alpha * (gx[c] - gj[c]);
      }
      if (alpha_terms) alpha_terms[j] = static_cast<double>(term) - static_cast<double>(dot(gj, xj, d));
    }
  });
}

template <typename scalar_t, int kHeads, int kWidth>
void backward_key_rows(const int64_t* crow, const int64_t* col, const scalar_t* kq, const scalar_t* att,
                       const scalar_t* da, scalar_t scale, scalar_t* ds, scalar_t* grad_kq, int64_t n, int64_t heads_,
                       int64_t kd_) {
  const int64_t heads = kHeads ? kHeads : heads_, kd = kWidth ? kWidth : kd_;
  const int64_t nnz = crow[n];
  const int64_t hk = heads * kd, row = 2 * hk;
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    HeadScratch<scalar_t, kHeads, 1> scratch(heads);
    scalar_t* acc = scratch.data();
    for (int64_t i = begin; i < end; ++i) {
      const int64_t start = crow[i], stop = crow[i + 1];
      for (int64_t h = 0; h < heads; ++h) acc[h] = 0;
      for (int64_t p = start; p < stop; ++p)
        for (int64_t h = 0; h < heads; ++h) acc[h] += att[p * heads + h] * da[p];
      scalar_t* gk = grad_kq + i * row;
      for (int64_t c = 0; c < hk; ++c) gk[c] = 0;
      for (int64_t p = start; p < stop; ++p) {
        prefetch_gather(kq + hk, col, p, nnz, row, hk);
        const scalar_t* qj = kq + col[p] * row + hk;
        for (int64_t h = 0; h < heads; ++h) {
          const scalar_t dsh = att[p * heads + h] * (da[p] - acc[h]);
          ds[p * heads + h] = dsh;
          const scalar_t w = dsh * scale;
#pragma omp simd
          for (int64_t c = 0; c < kd; ++c) gk[h * kd + c] += w * qj[h * kd + c];
        }
      }
    }
  });
}

template <typename scalar_t, int kHeads, int kWidth>
void backward_query_cols(const int64_t* t_crow, const int64_t* t_col, const int64_t* t_perm, const scalar_t* kq,
                         const scalar_t* ds, scalar_t scale, scalar_t* grad_kq, int64_t n, int64_t heads_,
                         int64_t kd_) {
  const int64_t heads = kHeads ? kHeads : heads_, kd = kWidth ? kWidth : kd_;
  const int64_t nnz = t_crow[n];
  const int64_t hk = heads * kd, row = 2 * hk;
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      scalar_t* gq = grad_kq + j * row + hk;
      for (int64_t c = 0; c < hk; ++c) gq[c] = 0;
      const int64_t stop = t_crow[j + 1];
      for (int64_t p = t_crow[j]; p < stop; ++p) {
        prefetch_gather(kq, t_col, p, nnz, row, hk);
        prefetch_gather(ds, t_perm, p, nnz, heads, heads);
        const int64_t e = t_perm[p];
        const scalar_t* ki = kq + t_col[p] * row;
        for (int64_t h = 0; h < heads; ++h) {
          const scalar_t w = ds[e * heads + h] * scale;
#pragma omp simd
          for (int64_t c = 0; c < kd; ++c) gq[h * kd + c] += w * ki[h * kd + c];
        }
      }
    }
  });
}

void check_inputs(const char* name, const torch::Tensor& crow, const torch::Tensor& col, const torch::Tensor& kq,
                  const torch::Tensor& x, const torch::Tensor& alpha) {
  for (const auto* t : {&crow, &col, &kq, &x, &alpha})
    TORCH_CHECK(t->device().is_cpu(), name, " (C++ CPU kernel): every tensor must be on the CPU");
  TORCH_CHECK(crow.scalar_type() == at::kLong && col.scalar_type() == at::kLong,
              name, " (C++ CPU kernel): crow and col must be int64");
  TORCH_CHECK(kq.dim() == 4 && kq.size(1) == 2, name, " (C++ CPU kernel): kq must be [N, 2, H, K] (keys, then "
              "queries), got ", kq.sizes());
  TORCH_CHECK(x.dim() == 2 && x.size(0) == kq.size(0) && crow.numel() == kq.size(0) + 1,
              name, " (C++ CPU kernel): x [N, D] and crow [N + 1] must match kq's N = ", kq.size(0),
              ", got x ", x.sizes(), " and crow of ", crow.numel());
  TORCH_CHECK(kq.scalar_type() == x.scalar_type(), name, " (C++ CPU kernel): kq and x must share a dtype");
  TORCH_CHECK(alpha.numel() == 1, name, " (C++ CPU kernel): alpha must hold one number, got ", alpha.sizes());
}

}  // namespace

std::tuple<torch::Tensor, torch::Tensor> attention_diffusion(const torch::Tensor& crow, const torch::Tensor& col,
                                                             const torch::Tensor& kq, const torch::Tensor& x,
                                                             const torch::Tensor& alpha, double scale) {
  check_inputs("attention_diffusion", crow, col, kq, x, alpha);
  const auto crow_c = crow.contiguous(), col_c = col.contiguous();
  const auto kq_c = kq.contiguous(), x_c = x.contiguous();
  const int64_t n = kq_c.size(0), heads = kq_c.size(2), kd = kq_c.size(3), d = x_c.size(1);
  auto out = beltrami::pooled_empty({n, d}, x_c.options());
  auto att = beltrami::pooled_empty({col_c.numel(), heads}, x_c.options());
  const double a = alpha.item<double>();
  AT_DISPATCH_FLOATING_TYPES(x_c.scalar_type(), "attention_diffusion_cpu", [&] {
    with_shape<scalar_t>(heads, kd, [&](auto shape) {
      forward_rows<scalar_t, shape.heads, shape.width>(
          crow_c.data_ptr<int64_t>(), col_c.data_ptr<int64_t>(), kq_c.data_ptr<scalar_t>(), x_c.data_ptr<scalar_t>(),
          static_cast<scalar_t>(scale), static_cast<scalar_t>(a), out.data_ptr<scalar_t>(), att.data_ptr<scalar_t>(),
          n, heads, kd, d);
    });
  });
  return {out, att};
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> attention_diffusion_backward(
    const torch::Tensor& crow, const torch::Tensor& col, const torch::Tensor& t_crow, const torch::Tensor& t_col,
    const torch::Tensor& t_perm, const torch::Tensor& kq, const torch::Tensor& x, const torch::Tensor& alpha,
    const torch::Tensor& att, const torch::Tensor& grad, double scale, bool need_kq, bool need_x, bool need_alpha) {
  check_inputs("attention_diffusion_backward", crow, col, kq, x, alpha);
  TORCH_CHECK(grad.sizes() == x.sizes() && att.dim() == 2 && att.size(0) == col.numel() && att.size(1) == kq.size(2),
              "attention_diffusion_backward (C++ CPU kernel): grad must be [N, D] and att [E, H]");
  const auto crow_c = crow.contiguous(), col_c = col.contiguous(), t_crow_c = t_crow.contiguous();
  const auto t_col_c = t_col.contiguous(), t_perm_c = t_perm.contiguous();
  const auto kq_c = kq.contiguous(), x_c = x.contiguous(), att_c = att.contiguous(), grad_c = grad.contiguous();
  const int64_t n = kq_c.size(0), heads = kq_c.size(2), kd = kq_c.size(3), d = x_c.size(1);
  const double a = alpha.item<double>();
  torch::Tensor grad_kq, grad_x, grad_alpha, ds, da, alpha_terms;
  if (need_kq) {
    grad_kq = beltrami::pooled_empty(kq_c.sizes(), kq_c.options());
    ds = beltrami::pooled_empty(att_c.sizes(), att_c.options());
    da = beltrami::pooled_empty({att_c.size(0)}, att_c.options());
  }
  if (need_x) grad_x = beltrami::pooled_empty(x_c.sizes(), x_c.options());
  if (need_alpha) alpha_terms = beltrami::pooled_empty({n}, x_c.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(x_c.scalar_type(), "attention_diffusion_backward_cpu", [&] {
    with_shape<scalar_t>(heads, kd, [&](auto shape) {
      constexpr int H = shape.heads, K = shape.width;
      const auto s = static_cast<scalar_t>(scale), al = static_cast<scalar_t>(a);
      scalar_t* da_ptr = need_kq ? da.data_ptr<scalar_t>() : nullptr;
      if (need_kq || need_x || need_alpha)
        backward_grad_cols<scalar_t, H>(t_crow_c.data_ptr<int64_t>(), t_col_c.data_ptr<int64_t>(),
                                        t_perm_c.data_ptr<int64_t>(), x_c.data_ptr<scalar_t>(),
                                        att_c.data_ptr<scalar_t>(), grad_c.data_ptr<scalar_t>(), al, da_ptr,
                                        need_x ? grad_x.data_ptr<scalar_t>() : nullptr,
                                        need_alpha ? alpha_terms.data_ptr<double>() : nullptr, n, heads, d);
      if (need_kq) {
        backward_key_rows<scalar_t, H, K>(crow_c.data_ptr<int64_t>(), col_c.data_ptr<int64_t>(),
                                       kq_c.data_ptr<scalar_t>(), att_c.data_ptr<scalar_t>(), da_ptr, s,
                                       ds.data_ptr<scalar_t>(), grad_kq.data_ptr<scalar_t>(), n, heads, kd);
        backward_query_cols<scalar_t, H, K>(t_crow_c.data_ptr<int64_t>(), t_col_c.data_ptr<int64_t>(),
                                         t_perm_c.data_ptr<int64_t>(), kq_c.data_ptr<scalar_t>(),
                                         ds.data_ptr<scalar_t>(), s, grad_kq.data_ptr<scalar_t>(), n, heads, kd);
      }
    });
  });
  if (need_alpha) grad_alpha = alpha_terms.sum().to(x_c.scalar_type()).reshape(alpha.sizes());
  return {grad_kq, grad_x, grad_alpha};
}

std::vector<std::tuple<int64_t, int64_t>> attention_fixed_shapes() {
  return shape_list(static_cast<FixedShapes*>(nullptr));
}
