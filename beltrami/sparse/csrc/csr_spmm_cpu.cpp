// CSR sparse @ dense on the CPU: out[i] = sum_{p in row i} values[p] * x[col[p]].
//
// Why a kernel of our own: torch's CPU CSR product (MKL's sparse BLAS) ran 1.4-1.8x slower than this loop
// on the graphs of the benchmarks (one thread, D = 64). The time goes into fetching the rows x[col[p]] from
// random places in memory; the loop issues those fetches ahead of use (software prefetch, far ahead into L2
// and near into L1: kernels.h) and keeps the output row in L1 while it accumulates. Rows are split between
// threads with at::parallel_for, so torch.set_num_threads governs it like any ATen kernel.
#include "kernels.h"

#include <ATen/Parallel.h>

namespace {

using beltrami::prefetch_gather;

template <typename scalar_t>
void spmm_rows(const int64_t* crow, const int64_t* col, const scalar_t* values, const scalar_t* x,
               scalar_t* out, int64_t num_rows, int64_t d) {
  const int64_t nnz = crow[num_rows];
  at::parallel_for(0, num_rows, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      scalar_t* oi = out + i * d;
      for (int64_t k = 0; k < d; ++k) oi[k] = scalar_t(0);
      const int64_t stop = crow[i + 1];
      for (int64_t p = crow[i]; p < stop; ++p) {
        // ahead across row ends: rows average ~14 entries on graphs like ogbn-arxiv, so prefetching within
        // the row only would leave a row's first entries to wait for memory
        prefetch_gather(x, col, p, nnz, d, d);
        const scalar_t* xj = x + col[p] * d;
        const scalar_t w = values[p];
#pragma omp simd
        for (int64_t k = 0; k < d; ++k) oi[k] += w * xj[k];
      }
    }
  });
}

// Both gradients of out = A(values) @ x in one pass over the columns of A (the rows of A^T; t_perm[p] is the
// entry of A stored at position p of A^T): grad_x[j] = sum_{i: (i, j) in A} values[(i, j)] grad[i] and
// grad_values[(i, j)] = <grad[i], x[j]>. Both read the same gathered row grad[i]: done as two kernels (a
// sampled dense-dense product over the rows, a product with A^T over the columns) that row is fetched from
// memory twice, and on graphs without locality fetching rows is the whole cost. Each entry (i, j) belongs
// to exactly one column j, so no two threads write one grad_values element.
template <typename scalar_t>
void spmm_backward_cols(const int64_t* t_crow, const int64_t* t_col, const int64_t* t_perm, const scalar_t* values,
                        const scalar_t* x, const scalar_t* grad, scalar_t* grad_values, scalar_t* grad_x,
                        int64_t n, int64_t d) {
  const int64_t nnz = t_crow[n];
  at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      scalar_t* gx = grad_x ? grad_x + j * d : nullptr;
      if (gx) for (int64_t k = 0; k < d; ++k) gx[k] = scalar_t(0);
      const scalar_t* xj = x + j * d;
      const int64_t stop = t_crow[j + 1];
      for (int64_t p = t_crow[j]; p < stop; ++p) {
        prefetch_gather(grad, t_col, p, nnz, d, d);
        prefetch_gather(values, t_perm, p, nnz, 1, 1);
        const int64_t e = t_perm[p];
        const scalar_t* gi = grad + t_col[p] * d;
        if (grad_values) grad_values[e] = beltrami::dot(gi, xj, d);
        if (gx) {
          const scalar_t w = values[e];
#pragma omp simd
          for (int64_t k = 0; k < d; ++k) gx[k] += w * gi[k];
        }
      }
    }
  });
}

}  // namespace

std::tuple<torch::Tensor, torch::Tensor> csr_spmm_backward(const torch::Tensor& t_crow, const torch::Tensor& t_col,
                                                           const torch::Tensor& t_perm, const torch::Tensor& values,
                                                           const torch::Tensor& x, const torch::Tensor& grad,
                                                           bool need_values, bool need_x) {
  for (const auto* t : {&t_crow, &t_col, &t_perm, &values, &x, &grad})
    TORCH_CHECK(t->device().is_cpu(), "csr_spmm_backward (C++ CPU kernel): every tensor must be on the CPU");
  TORCH_CHECK(t_crow.scalar_type() == at::kLong && t_col.scalar_type() == at::kLong && t_perm.scalar_type() == at::kLong,
              "csr_spmm_backward (C++ CPU kernel): t_crow, t_col and t_perm must be int64");
  TORCH_CHECK(values.dim() == 1 && values.size(0) == t_col.size(0) && t_perm.size(0) == t_col.size(0),
              "csr_spmm_backward (C++ CPU kernel): values [E] and t_perm [E] expected for E = ", t_col.size(0),
              " stored entries, got ", values.sizes(), " and ", t_perm.sizes());
  TORCH_CHECK(x.dim() == 2 && grad.sizes() == x.sizes() && t_crow.numel() == x.size(0) + 1,
              "csr_spmm_backward (C++ CPU kernel): x and grad [N, D] with t_crow [N + 1] expected, got x ",
              x.sizes(), ", grad ", grad.sizes(), " and t_crow of ", t_crow.numel());
  TORCH_CHECK(values.scalar_type() == x.scalar_type() && grad.scalar_type() == x.scalar_type(),
              "csr_spmm_backward (C++ CPU kernel): values, x and grad dtypes differ");
  const auto t_crow_c = t_crow.contiguous(), t_col_c = t_col.contiguous(), t_perm_c = t_perm.contiguous();
  const auto values_c = values.contiguous(), x_c = x.contiguous(), grad_c = grad.contiguous();
  const int64_t n = x_c.size(0), d = x_c.size(1);
  torch::Tensor grad_values, grad_x;
  if (need_values) grad_values = beltrami::pooled_empty(values_c.sizes(), values_c.options());
  if (need_x) grad_x = beltrami::pooled_empty(x_c.sizes(), x_c.options());
  if (need_values || need_x) {
    AT_DISPATCH_FLOATING_TYPES(x_c.scalar_type(), "csr_spmm_backward_cpu", [&] {
      spmm_backward_cols<scalar_t>(t_crow_c.data_ptr<int64_t>(), t_col_c.data_ptr<int64_t>(),
                                   t_perm_c.data_ptr<int64_t>(), values_c.data_ptr<scalar_t>(),
                                   x_c.data_ptr<scalar_t>(), grad_c.data_ptr<scalar_t>(),
                                   need_values ? grad_values.data_ptr<scalar_t>() : nullptr,
                                   need_x ? grad_x.data_ptr<scalar_t>() : nullptr, n, d);
    });
  }
  return {grad_values, grad_x};
}

torch::Tensor csr_spmm(const torch::Tensor& crow, const torch::Tensor& col, const torch::Tensor& values,
                       const torch::Tensor& x) {
  TORCH_CHECK(crow.device().is_cpu() && col.device().is_cpu() && values.device().is_cpu() && x.device().is_cpu(),
              "csr_spmm (C++ CPU kernel): every tensor must be on the CPU");
  TORCH_CHECK(crow.scalar_type() == at::kLong && col.scalar_type() == at::kLong,
              "csr_spmm (C++ CPU kernel): crow and col must be int64");
  TORCH_CHECK(values.dim() == 1 && x.dim() == 2, "csr_spmm (C++ CPU kernel): values [E] and x [N, D] expected, got ",
              values.sizes(), " and ", x.sizes());
  TORCH_CHECK(values.size(0) == col.size(0), "csr_spmm (C++ CPU kernel): ", values.size(0), " values for ",
              col.size(0), " stored entries");
  TORCH_CHECK(values.scalar_type() == x.scalar_type(), "csr_spmm (C++ CPU kernel): values and x dtypes differ");
  const auto crow_c = crow.contiguous();
  const auto col_c = col.contiguous();
  const auto values_c = values.contiguous();
  const auto x_c = x.contiguous();
  const int64_t num_rows = crow_c.numel() - 1;
  auto out = beltrami::pooled_empty({num_rows, x_c.size(1)}, x_c.options());
  AT_DISPATCH_FLOATING_TYPES(x_c.scalar_type(), "csr_spmm_cpu", [&] {
    spmm_rows<scalar_t>(crow_c.data_ptr<int64_t>(), col_c.data_ptr<int64_t>(), values_c.data_ptr<scalar_t>(),
                        x_c.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), num_rows, x_c.size(1));
  });
  return out;
}
