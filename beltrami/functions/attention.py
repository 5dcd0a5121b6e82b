"""Multi-head edge attention on the joint coordinates ``z = [u, x]`` (paper eq. 13).

For each edge ``(i, j)`` (CSR row ``i``) and head ``h``, with keys ``K = W_K z`` and queries ``Q = W_Q z`` split
into ``H`` heads of width ``d_k``, a score ``s_ij`` is

- ``scaled_dot``: ``<K_i, Q_j> / sqrt(d_k)``. Eq. 13 prints ``/ d_k``; the official code and standard scaled
  dot-product attention divide by ``sqrt(d_k)``, and so do we.
- ``cosine_sim``: cosine of ``K_i`` and ``Q_j``.
- ``pearson``: cosine of ``K_i`` and ``Q_j`` after centring each over its ``d_k`` entries.
- ``exp_kernel``: ``sigma^2 exp(-||K_i - Q_j||^2 / (2 l^2))`` with learnable ``sigma`` and ``l``.
- ``exp_product``: the Beltrami form of ``exp_kernel`` that the official code uses when it attends on
  positions and features together: the product of one exp kernel on the feature columns and one on the
  positional columns, each with its own keys/queries, ``sigma`` and ``l``. The two length scales weigh
  distance in position against distance in features, which one kernel on the joint projection cannot.

Scores are normalised over each row (``softmax``, or the official code's ``squareplus``), so each head's
attention matrix is row-stochastic: node ``i`` averages its neighbours. ``normalise_over="cols"`` normalises
over each column instead (column-stochastic: node ``j`` splits what it sends), which is what the official
code's ``attention_norm_idx=1`` does with its ``(source, target)`` edge order; the two agree on regular
graphs and differ in how hubs are weighted. Per-edge products come from the ``sddmm`` kernel: no ``[E, d_k]``
tensor is formed, memory is O(E H + N d).
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..sparse.ops import gather_rows
from ..sparse.softmax import column_softmax, column_squareplus, segment_softmax, segment_squareplus
from ..validation import check_choice

KINDS = ("scaled_dot", "cosine_sim", "pearson", "exp_kernel", "exp_product")
DOT_KINDS = ("scaled_dot", "cosine_sim", "pearson")  # scores that are a (scaled) dot product of k_i and q_j
NORMALISATIONS = ("softmax", "squareplus")
NORMALISE_OVER = ("rows", "cols")
ATTEND_ON = ("both", "pos", "feat")
INITS = ("xavier", "constant")


class EdgeAttention(nn.Module):
    r"""Multi-head attention weights on the edges of a graph.

    Args:
        dim: width of the joint state ``z`` (``pos_dim`` positional columns first, then features).
        attention_dim: total width of keys/queries; ``d_k = attention_dim // heads``.
        heads: number of heads H.
        kind: ``scaled_dot`` (default), ``cosine_sim``, ``pearson``, ``exp_kernel`` or ``exp_product``
            (needs ``attend_on="both"`` and ``0 < pos_dim < dim``).
        normalisation: ``softmax`` (default) or ``squareplus``.
        attend_on: compute keys/queries from ``both`` (default) coordinates, only ``pos`` or only ``feat``.
        pos_dim: number of positional columns at the front of ``z`` (needed for ``attend_on != "both"``).
        normalise_over: ``rows`` (default: rows sum to 1) or ``cols`` (columns sum to 1, the official code's
            orientation).
        init: ``xavier`` (default, as a general attention layer starts) or ``constant`` (weights 1e-5, biases
            drawn as ``nn.Linear`` draws them: attention starts uniform over each neighbourhood, the start of
            the paper's code, and :class:`~beltrami.BLEND`'s default ``attention_init``).

    Shapes:
        - input ``z``: ``[N, dim]``; ``crow``: ``[N + 1]``; ``row``, ``col``, the CSR index tensors: ``[E]``.
        - output: ``[E, H]``, each head's weights summing to 1 over every non-empty row (or column).
    """

    def __init__(self, dim: int, attention_dim: int = 64, heads: int = 1, kind: str = "scaled_dot",
                 normalisation: str = "softmax", attend_on: str = "both", pos_dim: int = 0,
                 init: str = "xavier", normalise_over: str = "rows") -> None:
        super().__init__()
        check_choice(kind, KINDS, "attention kind")
        check_choice(normalisation, NORMALISATIONS, "attention normalisation")
        check_choice(attend_on, ATTEND_ON, "attend_on")
        check_choice(init, INITS, "attention init")
        check_choice(normalise_over, NORMALISE_OVER, "normalise_over")
        if dim < 1 or heads < 1 or attention_dim < heads or attention_dim % heads:
            raise ValueError(f"need dim >= 1 and attention_dim a positive multiple of heads; got dim={dim}, "
                             f"attention_dim={attention_dim}, heads={heads}")
        if not 0 <= pos_dim <= dim:
            raise ValueError(f"pos_dim must lie in [0, dim={dim}], got {pos_dim}")
        if attend_on == "pos" and pos_dim == 0 or attend_on == "feat" and pos_dim == dim:
            raise ValueError(f"attend_on={attend_on!r} but z has no such columns (pos_dim={pos_dim}, dim={dim})")
        if kind == "exp_product" and (attend_on != "both" or not 0 < pos_dim < dim):
            raise ValueError(f"kind='exp_product' needs attend_on='both' and positional and feature columns; "
                             f"got attend_on={attend_on!r}, pos_dim={pos_dim}, dim={dim}")
        self.dim, self.attention_dim, self.heads, self.d_k = dim, attention_dim, heads, attention_dim // heads
        self.kind, self.normalisation, self.attend_on, self.pos_dim, self.init = kind, normalisation, attend_on, pos_dim, init
        self.normalise_over = normalise_over
        self.dot_scale = 1.0 / math.sqrt(self.d_k) if kind == "scaled_dot" else 1.0
        # scores dot_scale * <k_i, q_j> normalised by a row softmax: what the fused C++ kernel computes
        self.fusable = kind in DOT_KINDS and normalisation == "softmax" and normalise_over == "rows"
        # W_K, W_Q read columns [lo, hi); exp_product reads the features there and the positions with W_Kp, W_Qp
        self.lo = pos_dim if attend_on == "feat" or kind == "exp_product" else 0
        self.hi = pos_dim if attend_on == "pos" else dim
        self.W_K = nn.Linear(self.hi - self.lo, attention_dim)
        self.W_Q = nn.Linear(self.hi - self.lo, attention_dim)
        product = kind == "exp_product"
        self.W_Kp: nn.Module = nn.Linear(pos_dim, attention_dim) if product else nn.Identity()
        self.W_Qp: nn.Module = nn.Linear(pos_dim, attention_dim) if product else nn.Identity()
        # the exp kernels' output scales and length scales (unused by the other kinds, kept for one code path)
        self.output_var = nn.Parameter(torch.ones(()))
        self.lengthscale = nn.Parameter(torch.ones(()))
        self.output_var_p = nn.Parameter(torch.ones(()))
        self.lengthscale_p = nn.Parameter(torch.ones(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.W_K, self.W_Q, self.W_Kp, self.W_Qp):
            if not isinstance(lin, nn.Linear):
                continue
            if self.init == "constant":
                # the official code's start: only the weights are set, the biases keep nn.Linear's draw.
                # The scores are then nearly equal on every edge (the bias product dominates), while
                # their gradient in W_K is b_Q z_j, first order: zero biases would leave it O(1e-5)
                lin.reset_parameters()
                nn.init.constant_(lin.weight, 1e-5)
            else:
                nn.init.xavier_uniform_(lin.weight)
                nn.init.zeros_(lin.bias)
        for p in (self.output_var, self.lengthscale, self.output_var_p, self.lengthscale_p):
            nn.init.ones_(p)

    def _sq_dist(self, k: Tensor, q: Tensor, dots: Tensor, row: Tensor, col: Tensor) -> Tensor:
        """``||k_i - q_j||^2`` per edge and head from the per-edge dots, without an ``[E, d_k]`` tensor."""
        sq = gather_rows((k * k).sum(-1), row) + gather_rows((q * q).sum(-1), col) - 2.0 * dots
        return sq.clamp_min(0.0)

    def _attended(self, z: Tensor) -> Tensor:
        # the whole of z when attending on both parts: a slice's backward would copy its gradient into zeros
        return z if self.lo == 0 and self.hi == self.dim else z[:, self.lo:self.hi]

    def _normalised(self, t: Tensor) -> Tensor:
        """Centred and unit-normalised per head for ``pearson``, unit-normalised for ``cosine_sim``."""
        if self.kind == "pearson":
            t = t - t.mean(dim=-1, keepdim=True)
        if self.kind == "cosine_sim" or self.kind == "pearson":
            t = t / torch.linalg.vector_norm(t, dim=-1, keepdim=True).clamp_min(1e-5)
        return t

    def keys_queries(self, z: Tensor) -> Tuple[Tensor, Tensor]:
        """Keys and queries ``[N, H, d_k]``, each contiguous (what the per-head SDDMM reads)."""
        zs, n = self._attended(z), z.shape[0]
        k = self.W_K(zs).view(n, self.heads, self.d_k)
        q = self.W_Q(zs).view(n, self.heads, self.d_k)
        return self._normalised(k), self._normalised(q)

    def stacked_keys_queries(self, z: Tensor, pooled: bool = False) -> Tensor:
        """Keys and queries side by side, ``[N, 2, H, d_k]`` (``[:, 0]`` keys, ``[:, 1]`` queries), from one
        matrix product (what the fused kernels read). ``pooled`` (CPU only): the product is
        ``beltrami::projection``, whose output and gradient of ``z`` reuse the C++ kernels' memory instead
        of fresh tensors; first derivatives only."""
        weight = torch.cat([self.W_K.weight, self.W_Q.weight])
        bias = torch.cat([self.W_K.bias, self.W_Q.bias])
        zs = self._attended(z)
        kq = torch.ops.beltrami.projection(zs, weight, bias) if pooled else F.linear(zs, weight, bias)
        return self._normalised(kq.view(z.shape[0], 2, self.heads, self.d_k))

    def scores(self, z: Tensor, crow: Tensor, col: Tensor, row: Tensor, t_crow: Tensor, t_col: Tensor,
               t_perm: Tensor, t_perm_inv: Tensor) -> Tensor:
        """Unnormalised scores ``[E, H]``."""
        k, q = self.keys_queries(z)
        n = z.shape[0]
        dots = torch.ops.beltrami.csr_sddmm(crow, col, k, q, t_crow, t_col, t_perm, t_perm_inv)
        if self.kind == "scaled_dot":
            return dots * self.dot_scale
        if self.kind == "exp_kernel":
            sq = self._sq_dist(k, q, dots, row, col)
            return self.output_var ** 2 * torch.exp(-sq / (2.0 * self.lengthscale ** 2))
        if self.kind == "exp_product":
            zp = z[:, :self.pos_dim]
            kp = self.W_Kp(zp).view(n, self.heads, self.d_k)
            qp = self.W_Qp(zp).view(n, self.heads, self.d_k)
            dots_p = torch.ops.beltrami.csr_sddmm(crow, col, kp, qp, t_crow, t_col, t_perm, t_perm_inv)
            sq = self._sq_dist(k, q, dots, row, col) / (2.0 * self.lengthscale ** 2)
            sq_p = self._sq_dist(kp, qp, dots_p, row, col) / (2.0 * self.lengthscale_p ** 2)
            return (self.output_var * self.output_var_p) ** 2 * torch.exp(-(sq + sq_p))
        return dots

    def forward(self, z: Tensor, crow: Tensor, col: Tensor, row: Tensor, t_crow: Tensor, t_col: Tensor,
                t_perm: Tensor, t_perm_inv: Tensor) -> Tensor:
        s = self.scores(z, crow, col, row, t_crow, t_col, t_perm, t_perm_inv)
        if self.normalise_over == "cols":
            if self.normalisation == "squareplus":
                return column_squareplus(s, col, z.shape[0])
            return column_softmax(s, col, z.shape[0])
        if self.normalisation == "squareplus":
            return segment_squareplus(s, crow, row)
        return segment_softmax(s, crow, row)

    def extra_repr(self) -> str:
        return (f"{self.dim}, attention_dim={self.attention_dim}, heads={self.heads}, kind={self.kind}, "
                f"normalisation={self.normalisation}, normalise_over={self.normalise_over}, "
                f"attend_on={self.attend_on}, pos_dim={self.pos_dim}, init={self.init}")
