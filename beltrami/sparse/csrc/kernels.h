// Declarations and helpers shared by the C++ CPU kernels of backend "cpp" (bound in bindings.cpp).
#pragma once

#include <torch/extension.h>

#include <tuple>

namespace beltrami {

// Prefetch distance in edges: enough to cover a memory round-trip at D = 64 (2, 4, 8 and 16 gave the fused
// kernels within 5% of each other here, on graphs with and without locality).
constexpr int64_t kPrefetchAhead = 4;
constexpr int64_t kCacheLine = 64;     // bytes

// Ask for the cache lines of row [ptr, ptr + n) ahead of its use: the kernels' time goes into fetching
// rows from random places in memory, and a few rows in flight hide most of that latency.
template <typename scalar_t>
inline void prefetch_row(const scalar_t* ptr, int64_t n) {
  const int64_t line = kCacheLine / static_cast<int64_t>(sizeof(scalar_t));
  for (int64_t k = 0; k < n; k += line) __builtin_prefetch(ptr + k);
}

// <a, b> over n entries. Eight independent partial sums, so the compiler turns the main loop into one
// vector multiply-add per eight entries without reassociating anything, then a short tree: an
// `omp simd reduction` compiled here to sixteen dependent scalar adds through the stack per call.
template <typename scalar_t>
inline scalar_t dot(const scalar_t* a, const scalar_t* b, int64_t n) {
  scalar_t part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int l = 0; l < 8; ++l) part[l] += a[c + l] * b[c + l];
  scalar_t rest = 0;
  for (; c < n; ++c) rest += a[c] * b[c];
  return ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7])) + rest;
}

}  // namespace beltrami

torch::Tensor csr_spmm(const torch::Tensor& crow, const torch::Tensor& col, const torch::Tensor& values,
                       const torch::Tensor& x);

std::tuple<torch::Tensor, torch::Tensor> csr_spmm_backward(const torch::Tensor& t_crow, const torch::Tensor& t_col,
                                                           const torch::Tensor& t_perm, const torch::Tensor& values,
                                                           const torch::Tensor& x, const torch::Tensor& grad,
                                                           bool need_values, bool need_x);

std::tuple<torch::Tensor, torch::Tensor> attention_diffusion(const torch::Tensor& crow, const torch::Tensor& col,
                                                             const torch::Tensor& kq, const torch::Tensor& x,
                                                             const torch::Tensor& alpha, double scale);

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> attention_diffusion_backward(
    const torch::Tensor& crow, const torch::Tensor& col, const torch::Tensor& t_crow, const torch::Tensor& t_col,
    const torch::Tensor& t_perm, const torch::Tensor& kq, const torch::Tensor& x, const torch::Tensor& alpha,
    const torch::Tensor& att, const torch::Tensor& grad, double scale, bool need_kq, bool need_x, bool need_alpha);
