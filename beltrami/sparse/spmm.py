"""``spmm``: CSR sparse @ dense with gradients into the edge values and the dense matrix, behind one
backend switch.

Backends:
    - ``"torch"`` (default): torch's CSR kernels wrapped as the custom ops of :mod:`beltrami.sparse.ops`
      (compiles with ``torch.compile``, scripts with TorchScript, runs on CPU and CUDA).
    - ``"torch_sparse"``: ``torch_sparse``'s ``spmm_sum`` kernel (``pip install -e .[sparse]``), used only when
      asked for by name or by ``$BELTRAMI_SPARSE_BACKEND`` (it measured slower than torch's CSR kernel
      here). The autograd formula is the same for both kernels.
    - ``"cpp"`` (CPU tensors) and ``"triton"`` (CUDA tensors): kernels of our own, in C++
      (:mod:`beltrami.sparse.cpu_kernels`, compiled on first use; offered where a C++ compiler is found) and
      in Triton (:mod:`beltrami.sparse.triton_kernels`; offered where a CUDA device and triton are). Their
      CSR product is faster than torch's on big graphs (docs/measurements/2026-11-cpu-kernels.md), and their
      backward computes both gradients in one pass. With them, a time-dependent Beltrami flow with
      dot-product attention and a row softmax computes scores, softmax, head mean and aggregation in one
      fused kernel (``beltrami::attention_diffusion``). Each runs on its own device type only: a tensor on
      the other raises (``DISPATCH``).
"""
from __future__ import annotations

import functools
import importlib.util
from typing import Dict, Optional, Tuple, Union

import torch
from torch import Tensor

from ..environment import read
from ..graph import CSR, Graph
from ..validation import check_choice, check_finite
from . import cpu_kernels, fused_ops, ops, triton_kernels  # noqa: F401 (fused_ops registers its ops)

# backend -> device type -> the kernel that runs: the one dispatch table (docs/architecture.md shows it).
# Our own kernels run on one device type each; a tensor on the other is an error, never a silent substitute.
DISPATCH: Dict[str, Dict[str, str]] = {
    "torch": {"cpu": "torch's CSR kernel", "cuda": "torch's CSR kernel"},
    "torch_sparse": {"cpu": "torch_sparse.spmm_sum", "cuda": "torch_sparse.spmm_sum"},
    "cpp": {"cpu": "our C++ kernels (beltrami/sparse/csrc, built on first use)"},
    "triton": {"cuda": "our Triton kernels (beltrami/sparse/triton_kernels.py)"},
}
BACKENDS = tuple(DISPATCH)


@functools.lru_cache(maxsize=None)
def available_backends(device: str = "cpu") -> Tuple[str, ...]:
    """Backends that run on ``device`` (a device type: ``"cpu"`` or ``"cuda"``) and whose packages are
    importable (or, for ``cpp``, buildable) here. Probed once per process and device
    (``available_backends.cache_clear()`` probes again): the probe runs ``ninja --version`` in a subprocess,
    which costs more than a small SpMM."""
    check_choice(device, ("cpu", "cuda"), "device type")
    found = ["torch"]
    if importlib.util.find_spec("torch_sparse") is not None:
        found.append("torch_sparse")
    if device == "cpu" and cpu_kernels.compiler_available():
        found.append("cpp")
    if device == "cuda" and triton_kernels.available() and torch.cuda.is_available():
        found.append("triton")
    return tuple(found)


_MISSING = {"torch_sparse": "pip install -e '.[sparse]' (builds from source in about 10 minutes)",
            "cpp": "it needs a C++ compiler ($CXX or c++) and ninja (pip install ninja); use backend='torch'",
            "triton": "it needs a CUDA device and triton (PyTorch's CUDA wheels bring it); use backend='torch'"}


def resolve_backend(backend: Optional[str] = None) -> str:
    """``backend`` > ``$BELTRAMI_SPARSE_BACKEND`` > ``"torch"``; raises if the backend is unknown or missing."""
    name = backend or read("BELTRAMI_SPARSE_BACKEND") or "torch"
    check_choice(name, BACKENDS, "sparse backend")
    device = next(iter(DISPATCH[name]))
    if name not in available_backends(device):
        raise ImportError(f"sparse backend {name!r} is not installed: {_MISSING[name]}")
    return name


def check_backend_device(backend: Optional[str], device: Union[str, torch.device]) -> None:
    """Raise ValueError, before any work, when ``backend`` has no kernel on ``device`` (see ``DISPATCH``)."""
    name = backend or read("BELTRAMI_SPARSE_BACKEND") or "torch"
    kind = torch.device(device).type
    if name in DISPATCH and kind not in DISPATCH[name]:
        other = {"cpu": "cpp", "cuda": "triton"}.get(kind)
        raise ValueError(f"sparse backend {name!r} has no kernels for {kind} tensors (it runs on "
                         f"{', '.join(DISPATCH[name])}); on {kind} use {other!r} or 'torch'")


def backend_id(backend: Optional[str] = None) -> int:
    """The kernel id the ``csr_spmm`` op takes for a backend name (see :func:`resolve_backend`)."""
    return {"torch": ops.TORCH, "torch_sparse": ops.TORCH_SPARSE, "cpp": ops.CPP,
            "triton": ops.TRITON}[resolve_backend(backend)]


def csr_of(graph: Union[Graph, CSR]) -> CSR:
    return graph.csr() if isinstance(graph, Graph) else graph


def spmm(graph: Union[Graph, CSR], values: Tensor, x: Tensor, backend: Optional[str] = None,
         validate: bool = False) -> Tensor:
    """Sparse-dense product ``out[i] = sum_{e in row i} values[e] * x[col[e]]``.

    Args:
        graph: the sparsity pattern (a :class:`Graph` or its cached :class:`CSR` index tensors).
        values: edge values in CSR order, ``[E]``, or per head ``[E, H]``.
        x: dense input, ``[N, D]`` (with ``[E]`` values) or ``[N, H, D]`` (with ``[E, H]`` values).
        backend: see the module docstring.
        validate: also check that ``values`` and ``x`` are finite (O(E + N D)); shapes, dtypes and devices
            are always checked (O(1)).

    Returns:
        ``[N, D]`` or ``[N, H, D]``. Differentiable in ``values`` and ``x`` with O(E D) memory.
    """
    kernel = backend_id(backend)
    csr = csr_of(graph)
    check_spmm_inputs(csr, values, x)
    if validate:
        check_finite(values, "values")
        check_finite(x, "x")
    return torch.ops.beltrami.csr_spmm(values=values, x=x, backend=kernel, **_index_args(csr))


def sddmm(graph: Union[Graph, CSR], a: Tensor, b: Tensor) -> Tensor:
    """Per-edge dot products ``out[e] = <a[row[e]], b[col[e]]>``: ``[E]`` for ``[N, D]`` inputs, ``[E, H]``
    for ``[N, H, D]`` inputs. Differentiable in ``a`` and ``b``."""
    csr = csr_of(graph)
    n = csr.crow.numel() - 1
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {type(t).__name__}")
        if t.dim() not in (2, 3) or t.shape[0] != n:
            raise ValueError(f"{name} must have shape [N, D] or [N, H, D] with N = {n} nodes, got {tuple(t.shape)}")
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        raise ValueError(f"a and b must have one shape, dtype and device, got {tuple(a.shape)} {a.dtype} {a.device} "
                         f"and {tuple(b.shape)} {b.dtype} {b.device}")
    return torch.ops.beltrami.csr_sddmm(a=a, b=b, **_index_args(csr))


def _index_args(csr: CSR) -> dict:
    return dict(crow=csr.crow, col=csr.col, t_crow=csr.t_crow, t_col=csr.t_col, t_perm=csr.t_perm,
                t_perm_inv=csr.t_perm_inv)


def check_spmm_inputs(csr: CSR, values: Tensor, x: Tensor) -> None:
    """Clear errors for the mistakes ``spmm`` would otherwise turn into a crash or a wrong answer (O(1))."""
    n, e = csr.crow.numel() - 1, csr.col.numel()
    for name, t in (("values", values), ("x", x)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got "
                            f"{t.dtype if isinstance(t, Tensor) else type(t).__name__}")
    if values.dim() not in (1, 2) or values.shape[0] != e:
        raise ValueError(f"values must have shape [E] or [E, H] with E = {e} stored edges, got {tuple(values.shape)}")
    want = 2 if values.dim() == 1 else 3
    if x.dim() != want or x.shape[0] != n or (want == 3 and x.shape[1] != values.shape[1]):
        shape = "[N, D]" if want == 2 else f"[N, H={values.shape[1]}, D]"
        raise ValueError(f"x must have shape {shape} with N = {n} nodes, got {tuple(x.shape)}")
    if values.dtype != x.dtype:
        raise TypeError(f"values ({values.dtype}) and x ({x.dtype}) must have the same dtype")
    if not (values.device == x.device == csr.col.device):
        raise ValueError(f"values ({values.device}), x ({x.device}) and the graph ({csr.col.device}) "
                         "must be on one device")
