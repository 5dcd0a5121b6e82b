// Python bindings of the C++ CPU kernels (loaded by beltrami/sparse/cpu_kernels.py).
#include "kernels.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("csr_spmm", &csr_spmm, "CSR sparse @ dense on the CPU (values [E], x [N, D])");
  m.def("attention_spmm", &attention_spmm,
        "Fused multi-head dot-product attention, row softmax, head mean and aggregation: (out [N, D], att [E, H])");
  m.def("attention_spmm_backward", &attention_spmm_backward,
        "Gradients of attention_spmm: (grad k [N, H, K], grad q [N, H, K], grad x [N, D])");
}
