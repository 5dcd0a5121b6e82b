"""Graph Beltrami flow (paper eq. 7-8): ``dz/dt = (A(z) - I) z`` on the joint coordinates ``z = [u, x]``.

Two functions, named for what they do:

- :class:`BeltramiDiffusion`: the attention matrix ``A(z(t))`` is recomputed at every evaluation (the true,
  time-dependent Beltrami flow; a nonlinear ODE).
- :class:`FrozenAttentionDiffusion`: ``A`` is computed once from ``z(0)`` (in :meth:`set_initial`) and held
  fixed, so the ODE is linear; this is what the paper's tuned runs did (official ``block: attention``
  with ``function: laplacian``).

Both follow the official code's form ``dz/dt = sigma(alpha) * (A z - z) + beta * z(0)``: a learnable
diffusivity ``sigma(alpha)`` (one for all channels, or one for the positional and one for the feature
channels: ``separate_diffusivity=True``) and an optional source term ``beta z(0)`` (``add_source=True``).
``A`` is the mean over heads of :class:`~beltrami.functions.attention.EdgeAttention`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..graph import CSR, Graph
from ..solvers.interfaces import AffineForm, LinearOperator
from ..sparse import triton_kernels
from ..sparse.ops import CPP, TRITON
from .attention import EdgeAttention
from .base import GraphODEFunction, diffusion_bound


class _AttentionDiffusion(GraphODEFunction):
    def __init__(self, graph: Graph, dim: int, attention: Optional[EdgeAttention] = None, pos_dim: int = 0,
                 separate_diffusivity: bool = False, add_source: bool = False, detach_source: bool = False,
                 backend: Optional[str] = None, **attention_kwargs) -> None:
        super().__init__(graph, dim, backend)
        if attention is None:
            attention = EdgeAttention(dim, pos_dim=pos_dim, **attention_kwargs)
        elif attention_kwargs:
            raise ValueError(f"pass attention options either in an EdgeAttention or as keywords, not both: "
                             f"{', '.join(sorted(attention_kwargs))}")
        if attention.dim != dim:
            raise ValueError(f"attention expects z of width {attention.dim}, the function {dim}")
        if separate_diffusivity and not 0 < pos_dim < dim:
            raise ValueError(f"separate_diffusivity needs 0 < pos_dim < dim, got pos_dim={pos_dim}, dim={dim}")
        self.attention = attention
        self.pos_dim = pos_dim
        self.separate_diffusivity = separate_diffusivity
        self.add_source, self.detach_source = add_source, detach_source
        # our own kernels compute dot-product attention with a row softmax and its aggregation in one kernel
        # (read by the time-dependent flow, whose every evaluation recomputes the attention): backend cpp on
        # the CPU, triton on CUDA where z is at most MAX_WIDTH wide (else the composed kernels run there)
        self.fused = (self.backend == CPP or (self.backend == TRITON and triton_kernels.available()
                                              and dim <= triton_kernels.MAX_WIDTH)) and attention.fusable
        self.fused_on_cuda = self.backend == TRITON  # the device type the fused kernel runs on
        # alpha[0]: all channels, or the positional ones; alpha[1]: the feature channels when separate.
        self.alpha_train = nn.Parameter(torch.zeros(2))
        self.beta_train = nn.Parameter(torch.zeros(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.attention.reset_parameters()
        nn.init.zeros_(self.alpha_train)
        # beta starts at 0, as in the official code: the source term grows in only as training asks for it
        # (a unit source over T ~ 18 would swamp the diffusion at the start).
        nn.init.zeros_(self.beta_train)

    def attention_values(self, z: Tensor) -> Tensor:
        """Edge weights ``[E]`` of ``A(z)``: the head-mean of the attention (rows, or columns, summing to 1)."""
        a = self.attention(z, self.crow, self.col, self.row, self.t_crow, self.t_col, self.t_perm, self.t_perm_inv)
        return a.mean(dim=1)

    def _linear(self, values: Tensor, z: Tensor) -> Tensor:
        """``sigma(alpha) (A z - z)``, the part of f that is linear in z for fixed attention values."""
        return self._scale_channels(self._spmm(values, z) - z)

    def _scale_channels(self, f: Tensor) -> Tensor:
        """``sigma(alpha) f``: one diffusivity, or one for the positional and one for the feature channels."""
        alpha = torch.sigmoid(self.alpha_train)
        if self.separate_diffusivity:
            return torch.cat([alpha[0] * f[:, : self.pos_dim], alpha[1] * f[:, self.pos_dim:]], dim=1)
        return alpha[0] * f

    def _diffuse(self, values: Tensor, z: Tensor) -> Tensor:
        return self._add_source(self._linear(values, z))

    def _add_source(self, f: Tensor) -> Tensor:
        if self.add_source:
            f = f + self.beta_train * self._source_state()
        return f

    def _source_state(self) -> Tensor:
        """``z(0)`` as the source term reads it: a constant (no gradient through it) with ``detach_source``."""
        return self.z0.detach() if self.detach_source else self.z0

    @torch.jit.ignore
    def state_bound(self, z0: Tensor, t: float) -> Optional[float]:
        """The attention is nonnegative and its rows (or columns) sum to 1, the diffusivities lie in (0, 1):
        no entry grows past ``z0``'s largest (rows) or its largest column l1 norm (columns), plus the source's
        share."""
        beta = float(self.beta_train.detach()) if self.add_source else 0.0
        contracts = "max" if self.attention.normalise_over == "rows" else "l1"
        return diffusion_bound(z0, contracts, beta, t)

    def _operator(self, values: Tensor) -> LinearOperator:
        constant = self.beta_train * self._source_state() if self.add_source else None
        return LinearOperator(lambda v, ts: self._linear(ts[0], v), (values,), constant, False)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, pos_dim={self.pos_dim}, separate_diffusivity={self.separate_diffusivity}, "
                f"add_source={self.add_source}, detach_source={self.detach_source}, nodes={self.num_nodes}")


class BeltramiDiffusion(_AttentionDiffusion):
    r"""Time-dependent graph Beltrami flow: ``f(t, z) = sigma(alpha) (A(z) z - z) [+ beta z(0)]`` with the
    attention ``A(z)`` recomputed at every evaluation.

    Args:
        graph: the diffusion graph ``E'`` (input graph or a rewired one).
        dim: width of ``z`` (``pos_dim`` positional columns first).
        attention: an :class:`EdgeAttention` of width ``dim``; or give its options as keywords
            (``attention_dim``, ``heads``, ``kind``, ``normalisation``, ``normalise_over``, ``attend_on``,
            ``init``).
        pos_dim: number of positional columns.
        separate_diffusivity: learn one diffusivity for the positional and one for the feature channels.
        add_source: add ``beta z(0)`` (call :meth:`set_initial` first).
        detach_source: the source's ``z(0)`` is a constant: its gradient reaches ``beta`` but not what made
            ``z(0)`` (the encoders), as in the official code.
        backend: sparse kernel (see :func:`beltrami.sparse.spmm`). With our own kernels (``"cpp"`` on the
            CPU, ``"triton"`` on CUDA), dot-product attention (``scaled_dot``, ``cosine_sim``, ``pearson``)
            normalised by a row softmax runs as one fused kernel, scores to aggregation (first derivatives
            only).

    Shapes:
        - ``z``: ``[N, dim]`` -> ``dz/dt``: ``[N, dim]``. Memory O(E H + N dim).

    Paper: https://arxiv.org/abs/2110.09443 (eq. 8 and 13).
    """

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        if self.fused and z.is_cuda == self.fused_on_cuda:  # else the composed path says what is wrong
            # one pass over the edges instead of SDDMM, softmax, head mean, SpMM and the relaxation
            # sigma(alpha) (A z - z) (see attention_cpu.cpp and triton_kernels.py); two diffusivities are
            # applied afterwards
            kq = self.attention.stacked_keys_queries(z, pooled=not z.is_cuda)
            if self.separate_diffusivity:  # the kernel gives A z - z, scaled per group of channels below
                alpha = self.alpha_train.new_ones(1)
            else:
                alpha = torch.sigmoid(self.alpha_train[:1])
            f = torch.ops.beltrami.attention_diffusion(self.crow, self.col, kq, z, alpha, self.t_crow, self.t_col,
                                                       self.t_perm, self.attention.dot_scale)[0]
            if self.separate_diffusivity:
                f = self._scale_channels(f)
            return self._add_source(f)
        return self._diffuse(self.attention_values(z), z)

    @torch.jit.ignore
    def linear_operator(self, t: Tensor, z: Tensor) -> LinearOperator:
        """Linearly implicit form: the attention evaluated at ``z`` (the start of a step), then linear."""
        return self._operator(self.attention_values(z))


class FrozenAttentionDiffusion(_AttentionDiffusion):
    r"""Diffusion with the attention frozen at ``z(0)``: ``f(t, z) = sigma(alpha) (A z - z) [+ beta z(0)]``,
    ``A = A(z(0))`` computed by :meth:`set_initial` (which must be called before solving). Linear in ``z``.

    Same arguments as :class:`BeltramiDiffusion`. Gradients reach the attention parameters through
    ``A(z(0))``.

    Where the graph holds one self-loop per node (BLEND adds them) and one diffusivity serves every channel,
    :meth:`set_initial` folds the whole linear part into one sparse matrix on the graph's pattern,
    ``L = sigma(alpha) (A - I)``, and the source into ``c = beta z(0)``: an evaluation is then one sparse
    product and one addition, and its backward one sampled product and one transposed product, where the
    unfolded form takes six operations forward and as many backward (two of them reductions over all of
    ``z``). Both forms are kept equal by ``tests/functions/test_diffusion.py``.
    """

    linear = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("values", torch.zeros(0), persistent=False)
        # L's values in CSR order and the source c (set by set_initial; empty where not folded)
        self.register_buffer("operator_values", torch.zeros(0), persistent=False)
        self.register_buffer("source", torch.zeros(0), persistent=False)

    def _set_csr(self, graph: Graph) -> None:
        super()._set_csr(graph)
        # 1.0 at each node's self-loop, if every node has exactly one: then -I lies on the pattern
        loops = (self.row == self.col).to(torch.get_default_dtype())
        one_each = int(loops.sum()) == self.num_nodes and bool(
            (torch.zeros(self.num_nodes, device=loops.device).index_add_(0, self.row, loops) == 1).all())
        self.register_buffer("diagonal", loops if one_each else loops.new_zeros(0), persistent=False)

    @torch.jit.export
    def set_initial(self, z0: Tensor) -> None:
        """Record ``z(0)``, compute the frozen attention ``A(z(0))`` from it, and fold ``L`` and ``c``."""
        self.z0 = z0
        self.values = self.attention_values(z0)
        if self.diagonal.numel() > 0 and not self.separate_diffusivity:
            alpha = torch.sigmoid(self.alpha_train[0])
            self.operator_values = alpha * (self.values - self.diagonal.to(self.values.dtype))
            self.source = self.beta_train * self._source_state() if self.add_source else z0.new_zeros(0)
        else:
            self.operator_values = self.values.new_zeros(0)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        if self.values.shape[0] != self.col.shape[0]:
            raise RuntimeError("FrozenAttentionDiffusion: call set_initial(z0) before evaluating f(t, z)")
        if self.operator_values.shape[0] == self.col.shape[0]:
            f = self._spmm(self.operator_values, z)
            return f.add_(self.source) if self.add_source else f  # in place: the product's output is fresh
        return self._diffuse(self.values, z)

    @torch.jit.ignore
    def linear_operator(self, t: Tensor, z: Tensor) -> LinearOperator:
        """Exact: ``f`` is affine in ``z`` with the frozen attention."""
        return self._operator(self.values)

    @torch.jit.ignore
    def affine_form(self) -> Optional[AffineForm]:
        """``f = L z + c`` as folded by :meth:`set_initial`, or None where it is not folded (no self-loop on
        some node, two diffusivities) or :meth:`set_initial` has not run."""
        if self.operator_values.shape[0] != self.col.shape[0]:
            return None
        index = CSR(self.crow, self.col, self.row, self.t_crow, self.t_col, self.t_perm, self.t_perm_inv)
        return AffineForm(index, self.operator_values, self.source if self.add_source else None, self.backend)
