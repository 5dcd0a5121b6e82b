// Declarations and helpers shared by the C++ CPU kernels of backend "cpp" (bound in bindings.cpp).
#pragma once

#include <torch/extension.h>

#include <tuple>
#include <vector>

namespace beltrami {

// Prefetch distances in edges, two levels. The kernels' time goes into fetching rows from random places in
// memory; a row is asked for kPrefetchFar edges ahead into L2 and again kPrefetchAhead edges ahead into L1.
// One level only (L1, 2 to 16 edges ahead) left the loop waiting on memory: L1 tracks too few outstanding
// misses to cover DRAM latency, L2 tracks more. On the arxiv-sized CSBM the far prefetch made the SpMM
// 1.35x faster with 2 threads, 1.5x with one (24, 32 and 48 edges within 5% of each other).
constexpr int64_t kPrefetchAhead = 4;
constexpr int64_t kPrefetchFar = 32;
constexpr int64_t kCacheLine = 64;     // bytes

// Both prefetch helpers are always inlined: GCC 12 judged a helper whose only effect is a prefetch free of
// side effects and deleted its calls before inlining them (no prefetch instruction was left in the build).
#define BELTRAMI_ALWAYS_INLINE __attribute__((always_inline)) inline

// Ask for the cache lines of row [ptr, ptr + n) ahead of its use, into L1 (locality 3) or L2 (locality 1).
// Rows of up to four lines (64 floats) take straight-line code: with the loop over lines (its trip count
// known only at run time) for every row, the SpMM at arxiv size took 14 ms, with this 12 ms.
template <int locality, typename scalar_t>
BELTRAMI_ALWAYS_INLINE void prefetch_row(const scalar_t* ptr, int64_t n) {
  const int64_t line = kCacheLine / static_cast<int64_t>(sizeof(scalar_t));
  const int64_t lines = (n + line - 1) / line;
  if (lines > 4) {
    for (int64_t k = 0; k < n; k += line) __builtin_prefetch(ptr + k, 0, locality);
    return;
  }
  if (lines > 0) __builtin_prefetch(ptr, 0, locality);
  if (lines > 1) __builtin_prefetch(ptr + line, 0, locality);
  if (lines > 2) __builtin_prefetch(ptr + 2 * line, 0, locality);
  if (lines > 3) __builtin_prefetch(ptr + 3 * line, 0, locality);
}

// Prefetch the rows that entries p + kPrefetchFar (into L2) and p + kPrefetchAhead (into L1) of a loop over
// entries [.., nnz) will gather: base + index[q] * stride, n elements each (n = 1 for a single element).
template <typename scalar_t>
BELTRAMI_ALWAYS_INLINE void prefetch_gather(const scalar_t* base, const int64_t* index, int64_t p, int64_t nnz,
                                            int64_t stride, int64_t n) {
  if (p + kPrefetchFar < nnz) prefetch_row<1>(base + index[p + kPrefetchFar] * stride, n);
  if (p + kPrefetchAhead < nnz) prefetch_row<3>(base + index[p + kPrefetchAhead] * stride, n);
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

// An uninitialised tensor like torch::empty, on memory recycled from the kernels' earlier outputs where it
// is at least 1 MiB and on the CPU (buffer_pool.cpp: fresh large tensors cost their page faults each time).
torch::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options);
// (bytes the pool holds, bytes of it in use) and letting go of its free blocks (returns the bytes freed).
std::tuple<int64_t, int64_t> buffer_pool_bytes();
int64_t release_buffers();
// Every CPU tensor of 1 MiB and more from the pool (enable) or from PyTorch's allocator again; and which.
void pool_cpu_tensors(bool enable);
bool cpu_tensors_pooled();

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

torch::Tensor projection(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> projection_backward(const torch::Tensor& x,
                                                                           const torch::Tensor& weight,
                                                                           const torch::Tensor& grad, bool need_x,
                                                                           bool need_weight, bool need_bias);

// The (heads, key width) pairs attention_diffusion and its backward are compiled for with both fixed (float).
std::vector<std::tuple<int64_t, int64_t>> attention_fixed_shapes();
