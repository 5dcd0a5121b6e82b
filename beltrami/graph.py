"""`Graph`: the CSR topology every kernel, encoding and model in beltrami runs on.

Convention: row ``i`` of the CSR structure lists the neighbours ``j`` that node ``i`` aggregates from, so
an edge ``(i, j)`` is the matrix entry ``A[i, j]`` and the diffusion ``dz_i/dt = sum_j a_ij (z_j - z_i)``
reads row ``i``. ``edge_index[0]`` is the row (receiving node), ``edge_index[1]`` the column (sending
node). PyG stores ``(source, target)``; :meth:`Graph.from_pyg` swaps it. For the undirected graphs of the
benchmarks, which are symmetric, the two conventions coincide.

Everything here is O(|E|) in time and memory: no dense n x n tensor is ever built.
"""
from __future__ import annotations

import os

from typing import Any, NamedTuple, Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .csr_tensor import sparse_csr
from .validation import check_index_tensor

ArrayLike = Union[Tensor, np.ndarray]


def _as_tensor(a: ArrayLike, name: str) -> Tensor:
    if isinstance(a, np.ndarray):
        a = torch.from_numpy(np.ascontiguousarray(a))
    return check_index_tensor(a, name)


MAX_NODES = 3_037_000_499
"""The most nodes a graph may have: edges are sorted by the key ``row * num_nodes + col``, which must fit
in an int64."""


def _check_size(num_nodes: int) -> None:
    """Refuse a node count the graph cannot be built for, before allocating: a sort key past int64 (a wrong
    edge order, silently) or row pointers (and the row counts they are built from) larger than this machine's
    memory."""
    if num_nodes > MAX_NODES:
        raise ValueError(f"num_nodes={num_nodes:,} is more than a graph can have ({MAX_NODES:,}: the edge sort "
                         "key row * num_nodes + col must fit in an int64)")
    need = 16 * (num_nodes + 1)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: let the allocator decide
        return
    if need > memory:
        raise ValueError(f"num_nodes={num_nodes:,} needs {need / 1e9:,.1f} GB for its row pointers, more than "
                         f"this machine's memory ({memory / 1e9:,.1f} GB)")


def _crow_from_sorted_rows(row: Tensor, num_nodes: int) -> Tensor:
    counts = torch.bincount(row, minlength=num_nodes)
    crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=row.device)
    torch.cumsum(counts, 0, out=crow[1:])
    return crow


class CSR(NamedTuple):
    """Index tensors of a CSR matrix A and of its transpose, as the sparse kernels take them.

    ``A`` has entries ``(row[e], col[e])``. ``A^T`` in CSR form has row pointers ``t_crow`` and columns
    ``t_col``; its values are ``values[t_perm]``, and ``values == values_t[t_perm_inv]``. All int64, ``[N + 1]``
    or ``[E]``.
    """

    crow: Tensor
    col: Tensor
    row: Tensor
    t_crow: Tensor
    t_col: Tensor
    t_perm: Tensor
    t_perm_inv: Tensor


class Graph:
    """A graph's topology in compressed sparse row (CSR) form.

    Args:
        crow: int64 row pointers, shape ``[num_nodes + 1]``, ``crow[0] == 0``, non-decreasing.
        col: int64 column indices, shape ``[num_edges]``, each in ``[0, num_nodes)``.
        validate: check the invariants above (O(|E|)); turn off only for trusted internal construction.

    Shapes:
        - ``crow``: ``[N + 1]``; ``col``, ``row``: ``[E]``; ``edge_index``: ``[2, E]``.

    Edge attributes (weights, attention) are kept outside the graph as ``[E]`` or ``[E, H]`` tensors in
    CSR order. Constructors sort edges by ``(row, col)``; multi-edges are kept until :meth:`coalesce`.
    """

    def __init__(self, crow: Tensor, col: Tensor, *, validate: bool = True) -> None:
        crow = check_index_tensor(crow, "crow")
        col = check_index_tensor(col, "col")
        if validate:
            self._validate(crow, col)
        self.crow = crow
        self.col = col
        self._row: Optional[Tensor] = None
        self._csr: Optional[CSR] = None

    @staticmethod
    def _validate(crow: Tensor, col: Tensor) -> None:
        if crow.dim() != 1 or crow.numel() < 1:
            raise ValueError(f"crow must be 1-D with num_nodes + 1 >= 1 entries, got shape {tuple(crow.shape)}")
        if col.dim() != 1:
            raise ValueError(f"col must be 1-D, got shape {tuple(col.shape)}")
        if crow.device != col.device:
            raise ValueError(f"crow is on {crow.device} but col is on {col.device}")
        n = crow.numel() - 1
        if int(crow[0]) != 0:
            raise ValueError(f"crow[0] must be 0, got {int(crow[0])}")
        if int(crow[-1]) != col.numel():
            raise ValueError(f"crow[-1] = {int(crow[-1])} must equal the number of column indices {col.numel()}")
        if n > 0 and bool((crow[1:] < crow[:-1]).any()):
            raise ValueError("crow must be non-decreasing")
        if col.numel():
            lo, hi = int(col.min()), int(col.max())
            if lo < 0:
                raise ValueError(f"column index {lo} is negative")
            if hi >= n:
                raise ValueError(f"column index {hi} is out of range for a graph of {n} nodes")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_edge_index(cls, edge_index: ArrayLike, num_nodes: Optional[int] = None) -> "Graph":
        """Build from a ``[2, E]`` integer array of ``(row, col)`` pairs.

        ``num_nodes`` defaults to ``max index + 1``. Edges are sorted by ``(row, col)``; duplicates are
        kept (see :meth:`coalesce`).
        """
        ei = _as_tensor(edge_index, "edge_index")
        if ei.dim() != 2 or ei.shape[0] != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(ei.shape)}")
        if ei.numel() and int(ei.min()) < 0:
            raise ValueError(f"edge_index holds a negative node index ({int(ei.min())})")
        inferred = int(ei.max()) + 1 if ei.numel() else 0
        if num_nodes is None:
            num_nodes = inferred
        elif isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 0:
            raise ValueError(f"num_nodes must be a non-negative int, got {num_nodes!r}")
        elif inferred > num_nodes:
            raise ValueError(f"edge_index holds node index {inferred - 1}, out of range for num_nodes={num_nodes}")
        num_nodes = int(num_nodes)
        _check_size(num_nodes)
        row, col = ei[0], ei[1]
        # One stable sort on the linear key row * n + col orders edges by (row, col).
        order = torch.argsort(row * max(num_nodes, 1) + col, stable=True)
        row, col = row[order], col[order]
        return cls(_crow_from_sorted_rows(row, num_nodes), col.contiguous(), validate=False)

    @classmethod
    def from_scipy(cls, matrix: sp.spmatrix) -> "Graph":
        """Build from the sparsity pattern of a square scipy sparse matrix (stored zeros dropped)."""
        if not sp.issparse(matrix):
            raise TypeError(f"expected a scipy sparse matrix, got {type(matrix).__name__}")
        if matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"adjacency matrix must be square, got shape {matrix.shape}")
        m = sp.csr_matrix(matrix, copy=True)
        m.eliminate_zeros()
        m.sum_duplicates()
        m.sort_indices()
        return cls(torch.from_numpy(m.indptr.astype(np.int64)), torch.from_numpy(m.indices.astype(np.int64)))

    @classmethod
    def from_pyg(cls, data: Any) -> "Graph":
        """Build from a PyG ``Data`` (or any object with ``edge_index`` and ``num_nodes``).

        PyG's ``edge_index`` is ``(source, target)`` and messages flow to the target, so the target becomes
        the CSR row. No import of torch_geometric is needed.
        """
        if not hasattr(data, "edge_index"):
            raise TypeError(f"{type(data).__name__} has no edge_index; expected a torch_geometric Data")
        ei = _as_tensor(data.edge_index, "edge_index")
        if ei.dim() != 2 or ei.shape[0] != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(ei.shape)}")
        return cls.from_edge_index(ei.flip(0), getattr(data, "num_nodes", None))

    # ------------------------------------------------------------------ views
    @property
    def num_nodes(self) -> int:
        return self.crow.numel() - 1

    @property
    def num_edges(self) -> int:
        """Number of stored (directed) CSR entries."""
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        return self.col.device

    @property
    def row(self) -> Tensor:
        """Row index of each CSR entry, ``[E]`` (derived from ``crow`` once and cached)."""
        if self._row is None:
            self._row = torch.repeat_interleave(
                torch.arange(self.num_nodes, device=self.device), self.degree(), output_size=self.num_edges
            )
        return self._row

    @property
    def edge_index(self) -> Tensor:
        """``[2, E]`` tensor of ``(row, col)`` pairs in CSR order."""
        return torch.stack([self.row, self.col])

    def csr(self) -> "CSR":
        """The index tensors the sparse kernels take (computed once and cached): see :class:`CSR`."""
        if self._csr is None:
            n, row, col = self.num_nodes, self.row, self.col
            # Edges of A^T in CSR order are A's edges sorted by (col, row).
            t_perm = torch.argsort(col * max(n, 1) + row, stable=True)
            t_perm_inv = torch.empty_like(t_perm)
            t_perm_inv[t_perm] = torch.arange(t_perm.numel(), device=self.device)
            self._csr = CSR(self.crow, col, row, _crow_from_sorted_rows(col[t_perm], n), row[t_perm],
                            t_perm, t_perm_inv)
        return self._csr

    def degree(self) -> Tensor:
        """Number of entries in each row, ``[N]`` (the in-degree in the aggregation sense)."""
        return self.crow[1:] - self.crow[:-1]

    def to(self, device: Union[str, torch.device]) -> "Graph":
        g = Graph(self.crow.to(device), self.col.to(device), validate=False)
        if self._row is not None:
            g._row = self._row.to(device)
        if self._csr is not None:
            g._csr = CSR(*(t.to(device) for t in self._csr))
        return g

    def to_scipy(self, values: Optional[ArrayLike] = None) -> sp.csr_matrix:
        """The graph as a scipy CSR matrix, with ``values`` (default all ones)."""
        v = np.ones(self.num_edges) if values is None else np.asarray(torch.as_tensor(values).detach().cpu())
        return sp.csr_matrix((v, self.col.cpu().numpy(), self.crow.cpu().numpy()), shape=(self.num_nodes,) * 2)

    def to_sparse_csr(self, values: Optional[Tensor] = None) -> Tensor:
        """The graph as a ``torch.sparse_csr_tensor`` with ``values`` (default all ones, float32)."""
        if values is None:
            values = torch.ones(self.num_edges, device=self.device)
        return sparse_csr(self.crow, self.col, values, (self.num_nodes, self.num_nodes))

    # ------------------------------------------------------------------ transformations
    def _filtered(self, keep: Tensor) -> "Graph":
        return Graph.from_edge_index(self.edge_index[:, keep], self.num_nodes)

    def has_self_loops(self) -> bool:
        return bool((self.row == self.col).any())

    def remove_self_loops(self) -> "Graph":
        return self._filtered(self.row != self.col)

    def add_self_loops(self) -> "Graph":
        """Add a loop ``(i, i)`` to every node that has none."""
        has_loop = torch.zeros(self.num_nodes, dtype=torch.bool, device=self.device)
        has_loop[self.row[self.row == self.col]] = True
        missing = (~has_loop).nonzero().flatten()
        ei = torch.cat([self.edge_index, missing.expand(2, -1)], dim=1)
        return Graph.from_edge_index(ei, self.num_nodes)

    def coalesce(self) -> "Graph":
        """Remove duplicate entries (multi-edges)."""
        if self.num_edges == 0:
            return self
        row, col = self.row, self.col
        first = torch.ones(self.num_edges, dtype=torch.bool, device=self.device)
        first[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])  # sorted by (row, col)
        return self if bool(first.all()) else self._filtered(first)

    def symmetrize(self) -> "Graph":
        """Union of the graph and its transpose, without duplicates: every edge in both directions."""
        ei = self.edge_index
        return Graph.from_edge_index(torch.cat([ei, ei.flip(0)], dim=1), self.num_nodes).coalesce()

    def transpose(self) -> "Graph":
        return Graph.from_edge_index(self.edge_index.flip(0), self.num_nodes)

    def is_symmetric(self) -> bool:
        a, b = self.coalesce(), self.transpose().coalesce()
        return bool(torch.equal(a.crow, b.crow) and torch.equal(a.col, b.col))

    def num_undirected_edges(self) -> int:
        """Distinct unordered pairs ``{i, j}`` with ``i != j`` (the count papers report for undirected graphs)."""
        g = self.symmetrize()
        return int((g.row != g.col).sum()) // 2

    def subgraph(self, nodes: Tensor) -> "Graph":
        """The subgraph induced by ``nodes`` (int ids, kept in the given order, relabelled 0..k-1)."""
        nodes = check_index_tensor(nodes, "nodes").to(self.device)
        if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= self.num_nodes):
            raise ValueError(f"subgraph node ids must lie in [0, {self.num_nodes})")
        new_id = torch.full((self.num_nodes,), -1, dtype=torch.long, device=self.device)
        new_id[nodes] = torch.arange(nodes.numel(), device=self.device)
        if int((new_id >= 0).sum()) != nodes.numel():
            raise ValueError("subgraph node ids must be distinct")
        r, c = new_id[self.row], new_id[self.col]
        keep = (r >= 0) & (c >= 0)
        return Graph.from_edge_index(torch.stack([r[keep], c[keep]]), nodes.numel())

    def connected_components(self) -> Tuple[int, Tensor]:
        """Weakly connected components: ``(count, label per node)`` (scipy's O(N + E) csgraph routine)."""
        from scipy.sparse.csgraph import connected_components

        count, labels = connected_components(self.to_scipy(), directed=True, connection="weak")
        return int(count), torch.from_numpy(labels.astype(np.int64)).to(self.device)

    def largest_connected_component(self) -> Tuple["Graph", Tensor]:
        """The largest (weakly) connected component and ``node_map``, the old id of each kept node.

        Ties are broken by the smallest component label, so the result is deterministic. ``node_map`` is
        sorted, so node order is preserved: ``x_lcc = x[node_map]``.
        """
        if self.num_nodes == 0:
            return self, torch.zeros(0, dtype=torch.long, device=self.device)
        _, labels = self.connected_components()
        sizes = torch.bincount(labels)
        node_map = (labels == int(torch.argmax(sizes))).nonzero().flatten()
        return self.subgraph(node_map), node_map

    def fingerprint(self) -> str:
        """sha256 of the CSR arrays: a key for caches of things computed from this graph."""
        import hashlib

        h = hashlib.sha256()
        h.update(self.crow.cpu().numpy().tobytes())
        h.update(self.col.cpu().numpy().tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ dunder
    def __repr__(self) -> str:
        return f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return torch.equal(self.crow, other.crow) and torch.equal(self.col, other.col)

    __hash__ = None  # mutable tensors inside: not hashable
