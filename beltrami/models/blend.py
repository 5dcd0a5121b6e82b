"""BLEND: Beltrami Neural Diffusion (Chamberlain et al., NeurIPS 2021, https://arxiv.org/abs/2110.09443).

``z(0) = [phi(U), psi(X)]`` -> integrate the graph Beltrami flow to ``T`` -> ``Y = xi(z(T))``, with ``phi`` and
``psi`` linear encoders of positional coordinates ``U`` and features ``X`` and ``xi`` a decoder (ReLU,
dropout, linear). The flow is :class:`~beltrami.functions.FrozenAttentionDiffusion` (attention computed at
``z(0)``, the paper's tuned runs) or :class:`~beltrami.functions.BeltramiDiffusion` (recomputed at every
evaluation), integrated by any scheme of :func:`~beltrami.solvers.solve`. BLEND-kNN is the same model on a
rewired graph (see :mod:`beltrami.encodings`); GRAND-l is BLEND without positional coordinates.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functions import BeltramiDiffusion, FrozenAttentionDiffusion
from ..graph import Graph
from ..validation import check_choice, check_int, check_node_input, check_real, optional_real
from ..solvers.regularization import Regularization
from ..solvers import Solution, get_scheme, solve
from ..solvers.solve import BACKPROP, check_step_options
from .encoders import FeatureEncoder, PositionalEncoder


class BLEND(nn.Module):
    r"""Beltrami Neural Diffusion for node classification.

    Args:
        in_channels: feature dimension F.
        out_channels: number of classes C.
        graph: the diffusion graph (input graph, or a rewired one for BLEND-kNN).
        pos_channels: dimension P of the positional coordinates (0: none, which is GRAND-l).
        hidden_features: width of ``psi(X)`` (default 64).
        hidden_pos: width of ``phi(U)`` (default 16); ``z`` has ``hidden_features + hidden_pos`` columns.
        heads, attention_dim, attention_kind, normalisation, attention_init, normalise_over: the attention (see
            :class:`~beltrami.functions.EdgeAttention`; defaults 1, 64, ``scaled_dot``, ``softmax``, ``constant``,
            ``rows``). The attention starts ``constant`` here, as the paper's model does, where the attention
            layer alone starts ``xavier``.
        frozen: attention at ``z(0)`` only (default True, the paper's tuned runs) or at every evaluation.
        add_source: add ``beta z(0)`` to the flow; detach_source: with no gradient through that ``z(0)`` (the
            official code's form). separate_diffusivity: per-channel-group diffusivity.
        time: integration time T (default 3.0).
        scheme, step_size, rtol, atol, backprop, solver_options: passed to :func:`~beltrami.solvers.solve`.
        input_dropout, dropout: dropout on the features before ``psi`` and on ``z(T)`` before the decoder.
        pos_dropout: dropout on the coordinates before ``phi`` (default None: ``input_dropout``, as the
            official code does).
        regularization: RNODE weights (kinetic, Jacobian); the integrated terms are in ``last_solution``.

    Shapes:
        - ``x``: ``[N, F]``; ``pos``: ``[N, P]`` dense or sparse; output: ``[N, C]`` logits.

    After each forward, ``last_solution`` holds the :class:`~beltrami.solvers.Solution` (its ``stats`` give
    the NFE of that forward and, after backward, of the backward pass).
    """

    def __init__(self, in_channels: int, out_channels: int, graph: Graph, pos_channels: int = 0,
                 hidden_features: int = 64, hidden_pos: int = 16, heads: int = 1, attention_dim: int = 64,
                 attention_kind: str = "scaled_dot", normalisation: str = "softmax", attention_init: str = "constant",
                 normalise_over: str = "rows",
                 frozen: bool = True, add_source: bool = False, detach_source: bool = False,
                 separate_diffusivity: bool = False,
                 time: float = 3.0, scheme: str = "dopri5", step_size: Optional[float] = None,
                 rtol: Optional[float] = None, atol: Optional[float] = None, backprop: str = "direct",
                 input_dropout: float = 0.5, pos_dropout: Optional[float] = None, dropout: float = 0.0,
                 regularization: Optional[Regularization] = None,
                 solver_options: Optional[Dict[str, Any]] = None, backend: Optional[str] = None) -> None:
        super().__init__()
        for name, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                 ("pos_channels", pos_channels, 0), ("hidden_features", hidden_features, 1),
                                 ("hidden_pos", hidden_pos, 1 if pos_channels else 0), ("heads", heads, 1), ("attention_dim", attention_dim, 1)):
            check_int(value, name, low)
        time = check_real(time, "time", low=0.0, low_open=True)
        for name, value in (("input_dropout", input_dropout), ("pos_dropout", pos_dropout), ("dropout", dropout)):
            optional_real(value, name, 0.0, 1.0, high_open=True)
        check_step_options(get_scheme(scheme), step_size, rtol, atol)
        check_choice(backprop, BACKPROP, "backprop mode")
        self.in_channels, self.out_channels, self.pos_channels = in_channels, out_channels, pos_channels
        self.hidden_features, self.hidden_pos = hidden_features, hidden_pos if pos_channels > 0 else 0
        self.frozen, self.time, self.scheme, self.step_size = frozen, float(time), scheme, step_size
        self.rtol, self.atol, self.backprop = rtol, atol, backprop
        self.input_dropout, self.dropout = input_dropout, dropout
        self.pos_dropout = input_dropout if pos_dropout is None else pos_dropout
        self.regularization = regularization
        self.solver_options = dict(solver_options or {})
        dim = self.hidden_features + self.hidden_pos
        self.feature_encoder = FeatureEncoder(in_channels, hidden_features, input_dropout)
        self.pos_encoder = PositionalEncoder(pos_channels, self.hidden_pos, self.pos_dropout) if pos_channels > 0 else None
        cls = FrozenAttentionDiffusion if frozen else BeltramiDiffusion
        self.function = cls(graph, dim, pos_dim=self.hidden_pos, heads=heads,
                            attention_dim=attention_dim, kind=attention_kind, normalisation=normalisation,
                            normalise_over=normalise_over,
                            init=attention_init, add_source=add_source, detach_source=detach_source,
                            separate_diffusivity=separate_diffusivity, backend=backend)
        if regularization is not None and regularization.jacobian > 0:
            # the Jacobian penalty differentiates a vector-Jacobian product: the fused C++ attention
            # kernel has first derivatives only, the composed kernels have every order
            self.function.fused = False
        self.decoder = nn.Linear(dim, out_channels)
        self.last_solution: Optional[Solution] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.feature_encoder.reset_parameters()
        if self.pos_encoder is not None:
            self.pos_encoder.reset_parameters()
        self.function.reset_parameters()
        self.decoder.reset_parameters()

    def set_graph(self, graph: Graph) -> None:
        """Diffuse on ``graph`` from now on (rewiring)."""
        self.function.set_graph(graph)

    def encode(self, x: Tensor, pos: Optional[Tensor] = None) -> Tensor:
        """``z(0) = [phi(U), psi(X)]``, ``[N, hidden_pos + hidden_features]``."""
        n = self.function.num_nodes
        check_node_input(x, n, self.in_channels, "x")
        zx = self.feature_encoder(x)
        if self.pos_encoder is None:
            return zx
        if pos is None:
            raise ValueError(f"this BLEND was built with pos_channels={self.pos_channels}: pass pos")
        check_node_input(pos, n, self.pos_channels, "pos")
        return torch.cat([self.pos_encoder(pos), zx], dim=1)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(F.dropout(F.relu(z), self.dropout, self.training))

    def _solve(self, z0: Tensor, t1: float, t_eval: Optional[Sequence[float]] = None, save_fn=None):
        sol = solve(self.function, z0, t1, scheme=self.scheme, step_size=self.step_size, rtol=self.rtol,
                    atol=self.atol, backprop=self.backprop, regularization=self.regularization, t_eval=t_eval,
                    save_fn=save_fn, **self.solver_options)
        self.last_solution = sol
        return sol

    def forward(self, x: Tensor, pos: Optional[Tensor] = None) -> Tensor:
        return self.decode(self._solve(self.encode(x, pos), self.time).z)

    def forward_times(self, x: Tensor, pos: Optional[Tensor], times: Sequence[float]) -> Tensor:
        """Logits of the state at each of ``times`` (increasing, > 0; may pass ``self.time``) from one solve.

        Shapes:
            output ``[len(times), N, out_channels]``.
        """
        # each state decoded as the solver reaches it: the solve holds one state, not len(times)
        return self._solve(self.encode(x, pos), float(times[-1]), t_eval=list(times), save_fn=self.decode).zs

    def __repr__(self) -> str:
        flow = "frozen" if self.frozen else "beltrami"
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, pos={self.pos_channels}, "
                f"flow={flow}, scheme={self.scheme}, T={self.time:g})")
