"""GCN (Kipf & Welling 2017) on the same CSR kernels: ``H' = D^-1/2 (A + I) D^-1/2 H W``."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..functions.laplacian import normalised_weights
from ..graph import Graph
from ..validation import check_node_input
from ..sparse import spmm


def gcn_norm(graph: Graph) -> tuple:
    """The graph with self-loops and its symmetric-normalised edge values ``[E]``."""
    g = graph.coalesce().remove_self_loops().add_self_loops()
    return g, normalised_weights(g, None, "sym")


class GCN(nn.Module):
    """Two-layer GCN. Shapes: ``x`` ``[N, F]`` -> ``[N, C]``."""

    def __init__(self, in_channels: int, out_channels: int, graph: Graph, hidden: int = 64,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.hidden, self.dropout = in_channels, out_channels, hidden, dropout
        self.graph, values = gcn_norm(graph)
        self.register_buffer("values", values, persistent=False)
        self.lin1 = nn.Linear(in_channels, hidden)
        self.lin2 = nn.Linear(hidden, out_channels)
        self.last_solution = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def set_graph(self, graph: Graph) -> None:
        self.graph, self.values = gcn_norm(graph)

    def forward(self, x: Tensor, pos: Tensor = None) -> Tensor:
        check_node_input(x, self.graph.num_nodes, self.in_channels)
        h = F.dropout(x, self.dropout, self.training)
        h = F.relu(spmm(self.graph, self.values, self.lin1(h)))
        h = F.dropout(h, self.dropout, self.training)
        return spmm(self.graph, self.values, self.lin2(h))

    def __repr__(self) -> str:
        return f"GCN({self.in_channels}, {self.out_channels}, hidden={self.hidden})"
