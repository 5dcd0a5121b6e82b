"""GAT (Velickovic et al. 2018) on the same CSR kernels: per head, ``a_ij = softmax_j LeakyReLU(a_l . W h_i +
a_r . W h_j)`` over each row, then ``h'_i = sum_j a_ij W h_j`` (heads concatenated, or averaged in the last
layer). O(E H) memory for the attention."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..graph import Graph
from ..sparse.spmm import BACKENDS
from ..validation import check_choice, check_int
from ..sparse import edge_softmax, spmm
from .encoders import with_positions


def gat_layer(graph: Graph, h: Tensor, att_l: Tensor, att_r: Tensor, slope: float, dropout: float,
              training: bool, backend: Optional[str] = None) -> Tensor:
    """One GAT aggregation: ``h`` ``[N, H, F']`` -> ``[N, H, F']``."""
    csr = graph.csr()
    s = (h * att_l).sum(-1).index_select(0, csr.row) + (h * att_r).sum(-1).index_select(0, csr.col)
    a = edge_softmax(csr, F.leaky_relu(s, slope))
    a = F.dropout(a, dropout, training)
    return spmm(csr, a, h, backend=backend)


class GAT(nn.Module):
    """Two-layer GAT (8 heads of 8 then one output head by default). Shapes: ``[N, F]`` -> ``[N, C]``.
    ``backend``: the sparse kernels of the aggregation (default: ``$BELTRAMI_SPARSE_BACKEND`` or torch's).
    ``pos_channels`` > 0: positional coordinates ``pos`` ``[N, pos_channels]`` are concatenated to the features."""

    def __init__(self, in_channels: int, out_channels: int, graph: Graph, hidden: int = 8, heads: int = 8,
                 dropout: float = 0.6, negative_slope: float = 0.2, backend: Optional[str] = None,
                 pos_channels: int = 0) -> None:
        super().__init__()
        self.pos_channels = check_int(pos_channels, "pos_channels", 0)
        self.backend = check_choice(backend, (None,) + BACKENDS, "sparse backend")  # see beltrami.sparse.spmm
        self.in_channels, self.out_channels, self.hidden, self.heads = in_channels, out_channels, hidden, heads
        self.dropout, self.negative_slope = dropout, negative_slope
        self.graph = graph.coalesce().remove_self_loops().add_self_loops()
        self.lin1 = nn.Linear(in_channels + pos_channels, heads * hidden, bias=False)
        self.att1 = nn.Parameter(torch.empty(2, heads, hidden))
        self.lin2 = nn.Linear(heads * hidden, out_channels, bias=False)
        self.att2 = nn.Parameter(torch.empty(2, 1, out_channels))
        self.bias1 = nn.Parameter(torch.zeros(heads * hidden))
        self.bias2 = nn.Parameter(torch.zeros(out_channels))
        self.last_solution = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.lin1.weight, self.lin2.weight, self.att1, self.att2):
            nn.init.xavier_uniform_(p)
        nn.init.zeros_(self.bias1)
        nn.init.zeros_(self.bias2)

    def set_graph(self, graph: Graph) -> None:
        self.graph = graph.coalesce().remove_self_loops().add_self_loops()

    def forward(self, x: Tensor, pos: Tensor = None) -> Tensor:
        x = with_positions(x, pos, self.graph.num_nodes, self.in_channels, self.pos_channels)
        n = x.shape[0]
        h = self.lin1(F.dropout(x, self.dropout, self.training)).view(n, self.heads, self.hidden)
        h = gat_layer(self.graph, h, self.att1[0], self.att1[1], self.negative_slope, self.dropout, self.training,
                      self.backend)
        h = F.elu(h.reshape(n, -1) + self.bias1)
        h = self.lin2(F.dropout(h, self.dropout, self.training)).view(n, 1, self.out_channels)
        h = gat_layer(self.graph, h, self.att2[0], self.att2[1], self.negative_slope, self.dropout, self.training,
                      self.backend)
        return h.mean(1) + self.bias2

    def __repr__(self) -> str:
        pos = f", pos={self.pos_channels}" if self.pos_channels else ""
        return f"GAT({self.in_channels}, {self.out_channels}{pos}, hidden={self.hidden}, heads={self.heads})"
