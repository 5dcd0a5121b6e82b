"""Dense float64 reference implementations, for tests only (they build n x n matrices on purpose)."""
import math

import torch

import beltrami


def random_graph(n=12, m=40, seed=0, self_loops=True, isolated=1):
    """A random coalesced graph with some self-loops and ``isolated`` nodes with no edges at all."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(n - isolated, (2, m), generator=g)
    if self_loops:
        ei = torch.cat([ei, torch.arange(3).expand(2, -1)], dim=1)
    return beltrami.Graph.from_edge_index(ei, n).coalesce()


def hub_graph(n, m, degree, seed=0):
    """``random_graph(n, m)`` (last node isolated) plus node 0 joined both ways to ``degree`` other nodes: a
    row and a column long enough to take several blocks of a blocked kernel."""
    base = random_graph(n=n, m=m, seed=seed, isolated=1)
    hub = torch.stack([torch.zeros(degree, dtype=torch.long), torch.arange(1, degree + 1) % (n - 1)])
    return beltrami.Graph.from_edge_index(torch.cat([base.edge_index, hub, hub.flip(0)], 1), n).coalesce()


def dense(graph, values):
    """``[N, N]`` (or ``[H, N, N]`` for ``[E, H]`` values) matrix with ``values`` at the graph's entries."""
    n = graph.num_nodes
    if values.dim() == 1:
        a = torch.zeros(n, n, dtype=values.dtype)
        a[graph.row, graph.col] = values
        return a
    return torch.stack([dense(graph, values[:, h]) for h in range(values.shape[1])])


def mask(graph):
    m = torch.zeros(graph.num_nodes, graph.num_nodes, dtype=torch.bool)
    m[graph.row, graph.col] = True
    return m


def dense_row_softmax(graph, s_dense, dim=-1):
    """Masked softmax of an ``[..., N, N]`` score matrix over each row's edges (``dim=-2``: each column's),
    read back at the edges."""
    m = mask(graph)
    a = torch.softmax(s_dense.masked_fill(~m, float("-inf")), dim=dim).nan_to_num(0.0)
    return a[..., graph.row, graph.col]


def dense_squareplus(graph, s_edges, dim=-1):
    x = s_edges - s_edges.max()
    sp = (x + torch.sqrt(x ** 2 + 4)) / 2
    d = dense(graph, sp)
    out = (d / d.sum(dim, keepdim=True).clamp_min(1e-300))[..., graph.row, graph.col]
    return out if s_edges.dim() == 1 else out.T


def dense_scores(att, z):
    """All-pairs scores ``[H, N, N]`` of an EdgeAttention module, computed densely."""
    zs = z[:, att.lo:att.hi]
    n = z.shape[0]
    k = att.W_K(zs).view(n, att.heads, att.d_k).transpose(0, 1)  # [H, N, dk]
    q = att.W_Q(zs).view(n, att.heads, att.d_k).transpose(0, 1)
    if att.kind == "pearson":
        k, q = k - k.mean(-1, keepdim=True), q - q.mean(-1, keepdim=True)
    if att.kind in ("cosine_sim", "pearson"):
        k = k / k.norm(dim=-1, keepdim=True).clamp_min(1e-5)
        q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-5)
    if att.kind == "exp_kernel":
        sq = ((k[:, :, None, :] - q[:, None, :, :]) ** 2).sum(-1)
        return att.output_var ** 2 * torch.exp(-sq / (2 * att.lengthscale ** 2))
    if att.kind == "exp_product":
        zp = z[:, :att.pos_dim]
        kp = att.W_Kp(zp).view(n, att.heads, att.d_k).transpose(0, 1)
        qp = att.W_Qp(zp).view(n, att.heads, att.d_k).transpose(0, 1)
        sq = ((k[:, :, None, :] - q[:, None, :, :]) ** 2).sum(-1)
        sq_p = ((kp[:, :, None, :] - qp[:, None, :, :]) ** 2).sum(-1)
        return (att.output_var ** 2 * torch.exp(-sq / (2 * att.lengthscale ** 2))
                * att.output_var_p ** 2 * torch.exp(-sq_p / (2 * att.lengthscale_p ** 2)))
    s = k @ q.transpose(1, 2)
    return s / math.sqrt(att.d_k) if att.kind == "scaled_dot" else s


def dense_attention(att, graph, z):
    """EdgeAttention output ``[E, H]`` computed densely."""
    s = dense_scores(att, z)
    dim = -1 if att.normalise_over == "rows" else -2
    if att.normalisation == "softmax":
        return dense_row_softmax(graph, s, dim).T
    return dense_squareplus(graph, s[:, graph.row, graph.col].T, dim)


def dense_diffusion_rhs(func, graph, z, values):
    """sigma(alpha) (A z - z) + beta z0, densely."""
    f = dense(graph, values) @ z - z
    alpha = torch.sigmoid(func.alpha_train)
    if func.separate_diffusivity:
        scale = torch.cat([alpha[0].expand(func.pos_dim), alpha[1].expand(func.dim - func.pos_dim)])
        f = f * scale
    else:
        f = alpha[0] * f
    if func.add_source:
        f = f + func.beta_train * func.z0
    return f
