"""`GraphODEFunction`: what every right-hand side f(t, z) on a graph shares: the graph's CSR index
tensors as (non-persistent) buffers, a sparse kernel choice, and the initial state for source terms."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..graph import Graph
from ..sparse.spmm import backend_id
from ..validation import check_features


def diffusion_bound(z0: Tensor, contracts: Optional[str], source_weight: float, t: float) -> Optional[float]:
    """Bound on ``max |z(t)|`` for ``dz/dt = a (A - I) z + b z0`` with ``a >= 0``, from the norm the diffusion
    does not increase (per channel): ``"max"`` (``A`` row-stochastic and nonnegative: the maximum principle),
    ``"l1"`` (column-stochastic: an entry is at most its column's l1 norm) or ``"l2"`` (``A`` symmetric with
    eigenvalues in [-1, 1]); the source adds at most ``|b| t`` times that norm of ``z0``. None: no bound."""
    if contracts is None:
        return None
    with torch.no_grad():
        z = z0.detach().reshape(z0.shape[0], -1)
        norm = {"max": lambda: z.abs().amax(), "l1": lambda: z.abs().sum(0).amax(),
                "l2": lambda: torch.linalg.vector_norm(z, dim=0).amax()}[contracts]()
    return float(norm) * (1.0 + abs(source_weight) * t)


class GraphODEFunction(nn.Module):
    """Base class of graph ODE right-hand sides ``f(t, z)``.

    Subclasses implement ``forward(t, z) -> dz/dt`` with ``z`` of shape ``[N, dim]``. The graph lives in
    buffers (``crow``, ``col``, ``row`` and the transpose's ``t_crow``, ``t_col``, ``t_perm``, ``t_perm_inv``) so
    that ``.to(device)``, TorchScript and ``torch.compile`` see plain tensors; they are not saved in the
    ``state_dict`` (the graph is data, not weights). :meth:`set_graph` swaps the graph (rewiring).
    """

    def __init__(self, graph: Graph, dim: int, backend: Optional[str] = None) -> None:
        super().__init__()
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a beltrami.Graph, got {type(graph).__name__}")
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self.backend = backend_id(backend)
        self.num_nodes = graph.num_nodes
        for name in ("crow", "col", "row", "t_crow", "t_col", "t_perm", "t_perm_inv"):
            self.register_buffer(name, torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("z0", torch.zeros(0), persistent=False)
        self._set_csr(graph)

    def set_graph(self, graph: Graph) -> None:
        """Use ``graph`` from now on (rewiring); moves it to this module's device."""
        self._set_csr(graph)

    def _set_csr(self, graph: Graph) -> None:
        csr = graph.to(self.crow.device).csr()
        self.crow, self.col, self.row = csr.crow, csr.col, csr.row
        self.t_crow, self.t_col, self.t_perm, self.t_perm_inv = csr.t_crow, csr.t_col, csr.t_perm, csr.t_perm_inv
        self.num_nodes = graph.num_nodes

    @torch.jit.export
    def set_initial(self, z0: Tensor) -> None:
        """Record the initial state ``z(0)`` (for source terms and frozen attention). Call before solving."""
        self.z0 = z0

    @torch.jit.ignore
    def state_bound(self, z0: Tensor, t: float) -> Optional[float]:
        """A bound on ``max |z(t)|`` that the exact flow from ``z0`` cannot exceed, or None where none is known.
        Explicit fixed-step solvers compare their states against it: a step outside the scheme's stability
        region shows as growth the problem cannot have (:func:`~beltrami.solvers.solve`)."""
        return None

    def _spmm(self, values: Tensor, z: Tensor) -> Tensor:
        return torch.ops.beltrami.csr_spmm(self.crow, self.col, values, z, self.t_crow, self.t_col, self.t_perm,
                                           self.t_perm_inv, self.backend)

    def check_state(self, z: Tensor, name: str = "z") -> None:
        """Validate a state (shape ``[N, dim]``, floating point, finite); not called on the hot path."""
        check_features(z, self.num_nodes, name)
        if z.shape[1] != self.dim:
            raise ValueError(f"{name} must have {self.dim} columns (the function's dim), got {z.shape[1]}")
