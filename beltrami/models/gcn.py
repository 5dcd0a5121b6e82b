"""GCN (Kipf & Welling 2017) on the same CSR kernels: ``H' = D^-1/2 (A + I) D^-1/2 H W^T + b``, the bias added
after the aggregation as in the paper's code and PyG's ``GCNConv`` (added before, each node's bias would be
scaled by its row sum of the normalised adjacency)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functions.laplacian import normalised_weights
from ..graph import Graph
from ..sparse.spmm import BACKENDS
from ..validation import check_choice, check_int
from ..sparse import spmm
from .encoders import with_positions


def gcn_norm(graph: Graph) -> tuple:
    """The graph with self-loops and its symmetric-normalised edge values ``[E]``."""
    g = graph.coalesce().remove_self_loops().add_self_loops()
    return g, normalised_weights(g, None, "sym")


class GCN(nn.Module):
    """Two-layer GCN: ``relu(A_hat X W1^T + b1)``, dropout, ``A_hat H W2^T + b2``. Weights Glorot-uniform,
    biases zero, as in the paper. ``backend``: the sparse kernels (default: ``$BELTRAMI_SPARSE_BACKEND`` or
    torch's).

    ``pos_channels`` > 0: positional coordinates ``pos`` are concatenated to the features (the paper's
    "GCN/GAT with positional encoding").

    Shapes:
        ``x`` ``[N, in_channels]`` (and ``pos`` ``[N, pos_channels]``) -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, graph: Graph, hidden: int = 64,
                 dropout: float = 0.5, backend: Optional[str] = None, pos_channels: int = 0) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.hidden, self.dropout = in_channels, out_channels, hidden, dropout
        self.pos_channels = check_int(pos_channels, "pos_channels", 0)
        self.backend = check_choice(backend, (None,) + BACKENDS, "sparse backend")  # see beltrami.sparse.spmm
        self.graph, values = gcn_norm(graph)
        self.register_buffer("values", values, persistent=False)
        self.lin1 = nn.Linear(in_channels + pos_channels, hidden, bias=False)
        self.lin2 = nn.Linear(hidden, out_channels, bias=False)
        self.bias1 = nn.Parameter(torch.zeros(hidden))
        self.bias2 = nn.Parameter(torch.zeros(out_channels))
        self.last_solution = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin1, self.lin2):
            nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(self.bias1)
        nn.init.zeros_(self.bias2)

    def set_graph(self, graph: Graph) -> None:
        self.graph, self.values = gcn_norm(graph)

    def forward(self, x: Tensor, pos: Tensor = None) -> Tensor:
        x = with_positions(x, pos, self.graph.num_nodes, self.in_channels, self.pos_channels)
        h = F.dropout(x, self.dropout, self.training)
        h = F.relu(spmm(self.graph, self.values, self.lin1(h), backend=self.backend) + self.bias1)
        h = F.dropout(h, self.dropout, self.training)
        return spmm(self.graph, self.values, self.lin2(h), backend=self.backend) + self.bias2

    def __repr__(self) -> str:
        pos = f", pos={self.pos_channels}" if self.pos_channels else ""
        return f"GCN({self.in_channels}, {self.out_channels}{pos}, hidden={self.hidden})"
