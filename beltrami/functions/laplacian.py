"""Linear diffusion ``dz/dt = alpha (A z - z)`` with a fixed CSR operator: the closed-form reference for the
solvers (``z(t) = expm(t alpha (A - I)) z(0)``) and the frozen-attention case of BLEND.

``A`` is the symmetric-normalised adjacency ``D^-1/2 W D^-1/2`` (``norm="sym"``), the random-walk matrix
``D^-1 W`` (``norm="rw"``), or the given edge weights ``W`` as they are (``norm="none"``).
"""
from __future__ import annotations

from typing import Optional

import scipy.sparse as sp
import torch
from torch import Tensor

from ..graph import Graph
from ..solvers.interfaces import LinearOperator
from ..validation import check_choice, check_finite
from .base import GraphODEFunction, diffusion_bound

NORMS = ("sym", "rw", "none")


def normalised_weights(graph: Graph, weights: Optional[Tensor] = None, norm: str = "sym") -> Tensor:
    """Edge values ``[E]`` of the normalised operator; isolated nodes get no entries (no division by zero)."""
    check_choice(norm, NORMS, "normalisation")
    w = torch.ones(graph.num_edges, device=graph.device) if weights is None else weights
    if w.shape != (graph.num_edges,):
        raise ValueError(f"weights must have shape [E={graph.num_edges}], got {tuple(w.shape)}")
    check_finite(w, "weights")
    if norm == "none":
        return w
    deg = torch.zeros(graph.num_nodes, dtype=w.dtype, device=w.device).index_add_(0, graph.row, w)
    inv = torch.where(deg > 0, deg, torch.ones_like(deg)).reciprocal()
    if norm == "rw":
        return w * inv[graph.row]
    inv_sqrt = inv.sqrt()
    return inv_sqrt[graph.row] * w * inv_sqrt[graph.col]


class LaplacianDiffusion(GraphODEFunction):
    """``f(t, z) = alpha * (A z - z)`` for a fixed operator ``A`` (a linear, time-independent ODE).

    Args:
        graph: the graph.
        dim: width of ``z``.
        norm: ``sym`` (default), ``rw`` or ``none`` (see the module docstring).
        weights: optional ``[E]`` edge weights (default ones).
        alpha: diffusivity (a fixed float; learnable diffusivity lives in the attention functions).
        backend: sparse kernel.

    Shapes:
        - ``z``: ``[N, dim]`` -> ``[N, dim]``.
    """

    linear = True

    def __init__(self, graph: Graph, dim: int, norm: str = "sym", weights: Optional[Tensor] = None,
                 alpha: float = 1.0, backend: Optional[str] = None) -> None:
        super().__init__(graph, dim, backend)
        self.norm = norm
        self.alpha = float(alpha)
        self.register_buffer("values", normalised_weights(graph, weights, norm), persistent=False)
        self.symmetric = self._is_symmetric()
        self.reset_parameters()

    def set_graph(self, graph: Graph, weights: Optional[Tensor] = None) -> None:
        """Use ``graph`` (and its ``weights``, default ones) from now on, normalised as before."""
        self._set_csr(graph)
        self.values = normalised_weights(graph.to(self.crow.device), weights, self.norm)
        self.symmetric = self._is_symmetric()

    def _is_symmetric(self) -> bool:
        return bool(torch.equal(self.crow, self.t_crow) and torch.equal(self.col, self.t_col)
                    and torch.allclose(self.values, self.values[self.t_perm]))

    @torch.jit.ignore
    def linear_operator(self, t: Tensor, z: Tensor) -> LinearOperator:
        """``f(z) = L z`` with ``L = alpha (A - I)``: no constant; symmetric for ``sym`` on a symmetric graph."""
        values = self.values.to(z.dtype)
        return LinearOperator(lambda v, ts: self.alpha * (self._spmm(values, v) - v), (), None, self.symmetric)

    @torch.jit.ignore
    def state_bound(self, z0: Tensor, t: float) -> Optional[float]:
        """``alpha >= 0`` with ``rw`` (row-stochastic: maximum principle) or ``sym`` on a symmetric graph
        (eigenvalues of ``A`` in [-1, 1]: each channel's l2 norm does not grow); else unknown."""
        if self.alpha < 0:
            return None
        contracts = {"rw": "max", "sym": "l2" if self.symmetric else None}.get(self.norm)
        return diffusion_bound(z0, contracts, 0.0, t)

    def reset_parameters(self) -> None:
        """No learnable parameters."""

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.alpha * (self._spmm(self.values.to(z.dtype), z) - z)

    def to_scipy(self) -> sp.csr_matrix:
        """The generator ``alpha (A - I)`` as a scipy matrix (for references such as ``expm_multiply``)."""
        n = self.num_nodes
        a = sp.csr_matrix((self.values.detach().cpu().double().numpy(), self.col.cpu().numpy(),
                           self.crow.cpu().numpy()), shape=(n, n))
        return self.alpha * (a - sp.identity(n, format="csr"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, norm={self.norm}, alpha={self.alpha}, nodes={self.num_nodes})"
