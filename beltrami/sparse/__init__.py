"""Sparse kernels on CSR graphs: ``spmm`` (with gradients into edge values), ``sddmm``, edge softmax."""
from .cpu_kernels import buffer_pool_bytes, release_buffers
from .softmax import edge_softmax, edge_squareplus, segment_softmax, segment_squareplus
from .spmm import BACKENDS, available_backends, backend_id, check_spmm_inputs, resolve_backend, sddmm, spmm

__all__ = ["spmm", "sddmm", "edge_softmax", "edge_squareplus", "segment_softmax", "segment_squareplus",
           "BACKENDS", "available_backends", "backend_id", "resolve_backend", "check_spmm_inputs",
           "release_buffers", "buffer_pool_bytes"]
