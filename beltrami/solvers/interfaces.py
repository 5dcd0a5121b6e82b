"""What a right-hand side may offer a solver beyond ``f(t, z)``: its affine form at a point, for the implicit
schemes (:class:`LinearOperator`, from ``func.linear_operator(t, z)``), and its sparse affine form, for the
affine solver (:class:`AffineForm`, from ``func.affine_form()``). Functions implement these; only solvers
consume them. A function without them still works with every scheme (implicit ones then use Newton-Krylov)."""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Tuple

from torch import Tensor

from ..graph import CSR


class LinearOperator(NamedTuple):
    """The affine form ``f(t, z) = L z + c`` of a function at a linearisation point, for implicit schemes.

    ``apply(v, tensors)``: ``L v`` computed from ``tensors`` (the non-parameter tensors ``L`` depends on, such
    as frozen attention values), so an adjoint can rebind them to detached leaves; ``constant``: ``c`` (None
    for zero); ``symmetric``: whether ``L`` is symmetric (then CG applies).
    """

    apply: Callable[[Tensor, Tuple[Tensor, ...]], Tensor]
    tensors: Tuple[Tensor, ...]
    constant: Optional[Tensor]
    symmetric: bool

    def matvec(self, v: Tensor) -> Tensor:
        return self.apply(v, self.tensors)


class AffineForm(NamedTuple):
    """``f(t, z) = L z + c`` with ``L`` a sparse matrix on a graph's CSR pattern, for solvers that evaluate
    and differentiate such an f themselves (:mod:`beltrami.solvers.affine`).

    ``index``: the pattern's :class:`~beltrami.graph.CSR` index tensors (with its transpose); ``values``:
    ``L``'s entries in CSR order ``[E]``; ``source``: ``c`` ``[N, D]`` or None; ``backend``: the kernel id of
    :func:`~beltrami.sparse.spmm.backend_id`. Gradients of ``values`` and ``source`` reach whatever they
    were computed from."""

    index: CSR
    values: Tensor
    source: Optional[Tensor]
    backend: int
