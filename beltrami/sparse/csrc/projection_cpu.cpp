// The keys' and queries' projection x W^T + b that feeds the fused attention, with its output and the
// gradient of x on the buffer pool's recycled memory (buffer_pool.cpp). Through nn.Linear both were fresh
// [N, 2 H K] and [N, D] tensors each evaluation, 10 ms of page faults apiece on the arxiv-sized graph, as
// long as the matrix products themselves. The products are ATen's (at::addmm_out, at::mm_out).
#include "kernels.h"

namespace {

void check_projection(const char* name, const torch::Tensor& x, const torch::Tensor& weight) {
  TORCH_CHECK(x.device().is_cpu() && weight.device().is_cpu(), name, " (C++ CPU kernel): tensors must be on the CPU");
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2 && weight.size(1) == x.size(1), name,
              " (C++ CPU kernel): x [N, K] and weight [M, K] expected, got x ", x.sizes(), " and weight ",
              weight.sizes());
  TORCH_CHECK(x.scalar_type() == weight.scalar_type(), name, " (C++ CPU kernel): x and weight dtypes differ");
}

}  // namespace

torch::Tensor projection(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  check_projection("projection", x, weight);
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.scalar_type() == x.scalar_type(),
              "projection (C++ CPU kernel): bias [M] of x's dtype expected for M = ", weight.size(0), ", got ",
              bias.sizes());
  auto out = beltrami::pooled_empty({x.size(0), weight.size(0)}, x.options());
  at::addmm_out(out, bias, x, weight.t());
  return out;
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> projection_backward(const torch::Tensor& x,
                                                                           const torch::Tensor& weight,
                                                                           const torch::Tensor& grad, bool need_x,
                                                                           bool need_weight, bool need_bias) {
  check_projection("projection_backward", x, weight);
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == x.size(0) && grad.size(1) == weight.size(0),
              "projection_backward (C++ CPU kernel): grad [N, M] expected, got ", grad.sizes());
  torch::Tensor grad_x, grad_weight, grad_bias;
  if (need_x) {
    grad_x = beltrami::pooled_empty(x.sizes(), x.options());
    at::mm_out(grad_x, grad, weight);
  }
  if (need_weight) grad_weight = at::mm(grad.t(), x);
  if (need_bias) grad_bias = grad.sum(0);
  return {grad_x, grad_weight, grad_bias};
}
