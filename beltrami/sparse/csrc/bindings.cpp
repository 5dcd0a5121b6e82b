// Python bindings of the C++ CPU kernels (loaded by beltrami/sparse/cpu_kernels.py).
#include "kernels.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("csr_spmm", &csr_spmm, "CSR sparse @ dense on the CPU (values [E], x [N, D])");
  m.def("csr_spmm_backward", &csr_spmm_backward,
        "Both gradients of csr_spmm in one pass over A^T: (grad values [E], grad x [N, D])");
  m.def("attention_diffusion", &attention_diffusion,
        "Fused multi-head dot-product attention, row softmax, head mean and relaxation alpha (A x - x): "
        "(out [N, D], att [E, H])");
  m.def("attention_diffusion_backward", &attention_diffusion_backward,
        "Gradients of attention_diffusion: (grad kq [N, 2, H, K], grad x [N, D], grad alpha [])");
  m.def("attention_fixed_shapes", &attention_fixed_shapes,
        "The (heads, key width) pairs attention_diffusion is compiled for with both fixed, in float");
  m.def("projection", &projection, "x @ weight.T + bias with the output on the buffer pool's memory");
  m.def("projection_backward", &projection_backward,
        "Gradients of projection: (grad x [N, K] on the buffer pool's memory, grad weight [M, K], grad bias [M])");
  m.def("pooled_empty_like",
        [](const torch::Tensor& like) { return beltrami::pooled_empty(like.sizes(), like.options()); },
        "An uninitialised tensor of like's shape and dtype on the kernels' recycled memory");
  m.def("buffer_pool_bytes", &beltrami::buffer_pool_bytes,
        "(bytes the kernels' buffer pool holds, bytes of them in use)");
  m.def("pool_cpu_tensors", &beltrami::pool_cpu_tensors,
        "Every CPU tensor of 1 MiB and more from the buffer pool (True) or from PyTorch's allocator (False)");
  m.def("cpu_tensors_pooled", &beltrami::cpu_tensors_pooled, "Whether PyTorch's CPU tensors come from the pool");
  m.def("release_buffers", &beltrami::release_buffers,
        "Let go of the buffer pool's free blocks; returns the number of bytes freed");
}
