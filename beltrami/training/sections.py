"""The sections of a :class:`~beltrami.training.config.FitConfig`, one per object a fit builds: the data, the
positional encoding and rewiring, the model, the solver (with its adjoint), the training loop, and the run
(seeds, device, kernels, memory, checkpoints).

Every field has one flat name, its own (``lr``, ``scheme``) or, in the adjoint sub-section, ``adjoint_`` + its
own (``adjoint_scheme``); ``model`` is the model section's ``kind``. ``fit(..., lr=0.01)`` routes each flat
name to its section (:func:`route`); ``fit(..., train={"lr": 0.01})`` names the section.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..solvers.regularization import Regularization


@dataclass
class DataConfig:
    """What is loaded and how the graph is prepared."""

    split: Optional[str] = None          # public / random / fixed / runner / time (None: the dataset's default)
    lcc: Optional[bool] = None           # largest connected component (None: True for random/fixed splits)
    self_loops: bool = True              # add self-loops to the diffusion graph
    feature_norm: Optional[str] = None   # None (raw, as the official BLEND code) or "row": each node's
                                         # features divided by their sum (the GCN and GAT papers' preprocessing)


@dataclass
class EncodingConfig:
    """Positional coordinates U and rewiring (BLEND-kNN)."""

    pos_encoding: Optional[str] = None   # None, "ppr" (PPR rows), "deepwalk", "hyperbolic"
    ppr_alpha: float = 0.05
    ppr_topk: Optional[int] = 64         # entries kept per PPR row (None: all, n per row: small graphs only)
    ppr_normalization: str = "rw"        # "rw" (random-walk rows) or "sym-col" (the official code's GDC
                                         # encoding; self-loops of weight 1 when self_loops is on)
    deepwalk_dim: int = 64
    hyperbolic_dim: int = 8              # Poincare-ball dimension (the paper used 2-16)
    rewire: Optional[str] = None         # None, "ppr" (DIGL top-k graph), "knn" (kNN of the coordinates);
                                         # model="blend-knn" defaults it to "knn"
    rewire_k: int = 64
    rewire_on: str = "pos"               # kNN coordinates: "pos", "feat" or "both" (positions (+) features)
    rewire_every: int = 0                # dynamic rewiring: rebuild the kNN graph from the learned z(0)
                                         # every this many epochs (0: never; the paper used 10)
    rewire_metric: str = "cosine"        # kNN distance: "cosine" or "euclidean" (the official code's)
    rewire_symmetric: bool = True        # add each rewired edge's reverse (False: one direction, as the
                                         # official code builds its kNN and DIGL graphs)


@dataclass
class ModelConfig:
    """The network: BLEND's encoders, attention and decoder, or a baseline's widths."""

    kind: str = "blend"                  # blend, blend-knn, grand-l, gcn, gat (flat name: model)
    hidden: int = 64                     # width of psi(X) (BLEND), hidden width (GCN/GAT)
    pos_dim: int = 16                    # width of phi(U)
    heads: int = 1
    attention_dim: int = 64
    attention_kind: str = "scaled_dot"
    normalisation: str = "softmax"
    normalise_over: str = "rows"         # attention rows (node averages) or cols (official orientation) sum to 1
    attention_init: str = "constant"
    frozen: bool = True
    add_source: bool = False
    detach_source: bool = False          # the source term's z(0) a constant (no gradient to the encoders)
    separate_diffusivity: bool = False
    input_dropout: float = 0.5
    pos_dropout: Optional[float] = None  # dropout on the positional coordinates (None: input_dropout)
    dropout: float = 0.0
    kinetic: float = 0.0                 # RNODE weights
    jacobian: float = 0.0

    def blend_arguments(self) -> Dict[str, Any]:
        """:class:`~beltrami.BLEND`'s arguments from this section (its widths are ``hidden_features`` and
        ``hidden_pos``; the RNODE weights make its ``regularization``)."""
        d = dataclasses.asdict(self)
        hidden, pos_dim, kinetic, jacobian = (d.pop(k) for k in ("hidden", "pos_dim", "kinetic", "jacobian"))
        del d["kind"]
        reg = Regularization(kinetic, jacobian) if kinetic or jacobian else None
        return dict(d, hidden_features=hidden, hidden_pos=pos_dim, regularization=reg)


@dataclass
class AdjointConfig:
    """The backward solve of ``backprop="adjoint"`` (None: the forward's). Flat names ``adjoint_<field>``."""

    scheme: Optional[str] = None
    rtol: Optional[float] = None
    atol: Optional[float] = None
    step_size: Optional[float] = None    # step of a fixed-step adjoint scheme


@dataclass
class SolverConfig:
    """The integration: :func:`beltrami.solve`'s arguments, to ``time``."""

    time: float = 3.0
    scheme: str = "dopri5"
    step_size: Optional[float] = None
    rtol: Optional[float] = None
    atol: Optional[float] = None
    backprop: str = "direct"
    max_steps: int = 10_000
    adjoint: AdjointConfig = field(default_factory=AdjointConfig)

    def blend_arguments(self) -> Dict[str, Any]:
        """:class:`~beltrami.BLEND`'s solver arguments: the end time, the scheme and its tolerances, and the
        other options of :func:`beltrami.solve` (``max_steps``, the adjoint's) as ``solver_options``."""
        adjoint = {f"adjoint_{k}": v for k, v in dataclasses.asdict(self.adjoint).items() if v is not None}
        return dict(time=self.time, scheme=self.scheme, step_size=self.step_size, rtol=self.rtol, atol=self.atol,
                    backprop=self.backprop, solver_options={"max_steps": self.max_steps, **adjoint})


@dataclass
class TrainConfig:
    """The training loop and its evaluation."""

    optimizer: str = "adam"
    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = 100
    patience: Optional[int] = None       # early stopping on validation accuracy (None: run all epochs)
    select_time: float = 0.0             # > 0: every evaluation decodes z(t) at select_time_points times in
                                         # (0, select_time * time] and keeps the time of best validation
                                         # accuracy (the official code's GNNEarly, earlystopxT = 3); 0: z(T) only
    select_time_points: int = 48


@dataclass
class RunConfig:
    """How the runs are carried out: seeds, device, kernels, memory, checkpoints, display, notes."""

    seed: int = 0
    runs: int = 1
    seeds: Optional[List[int]] = None    # explicit seeds (overrides seed/runs)
    device: str = "cpu"
    compile: str = "eager"               # eager / script / compile (the diffusion function)
    sparse_backend: Optional[str] = None # every model's SpMM kernel: torch, torch_sparse, cpp (None:
                                         # $BELTRAMI_SPARSE_BACKEND or torch; see beltrami.sparse.spmm)
    pool_memory: bool = False            # big CPU tensors reuse freed blocks of their size: no page faults
                                         # (for the fit's duration; needs the C++ kernels; see beltrami.allocator)
    keep_freed_memory: bool = False      # glibc malloc keeps freed memory: no page faults for big CPU tensors
                                         # (for the fit's duration; see beltrami.allocator)
    checkpoint_dir: Optional[str] = None
    checkpoint_every: int = 0            # epochs between checkpoints (0: none)
    resume: bool = False
    progress: bool = True
    extras: Dict[str, Any] = field(default_factory=dict)  # free-form notes recorded with the result


SECTIONS = {"data": DataConfig, "encoding": EncodingConfig, "model": ModelConfig, "solver": SolverConfig,
            "train": TrainConfig, "run": RunConfig}


def _routes() -> Dict[str, Tuple[str, ...]]:
    """Flat name -> path of section names and field (``("solver", "adjoint", "scheme")``)."""
    routes: Dict[str, Tuple[str, ...]] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.name == "adjoint":
                for a in dataclasses.fields(AdjointConfig):
                    routes[f"adjoint_{a.name}"] = (section, "adjoint", a.name)
            else:
                routes["model" if (section, f.name) == ("model", "kind") else f.name] = (section, f.name)
    return routes


ROUTES = _routes()


def route(values: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Flat names and whole sections -> ``{section: {field: value}}`` (the adjoint as ``solver["adjoint"]``).

    A section is given as a dict (``train={"lr": 0.01}``); ``model`` is the model kind when a string and the
    model section when a dict. Raises ValueError for an unknown name (listing the valid ones) or a value
    given twice (flat and inside its section)."""
    out: Dict[str, Dict[str, Any]] = {s: {} for s in SECTIONS}
    given: Dict[Tuple[str, ...], str] = {}

    def put(path: Tuple[str, ...], value: Any, name: str) -> None:
        if path in given:
            raise ValueError(f"{'.'.join(path)} is given twice: as {given[path]!r} and as {name!r}; give it once")
        given[path] = name
        target = out[path[0]]
        if len(path) == 3:
            target = target.setdefault("adjoint", {})
        target[path[-1]] = value

    for name, value in values.items():
        if name in SECTIONS and isinstance(value, dict):
            for key, v in value.items():
                _check_field(name, key)
                if (name, key) == ("solver", "adjoint") and isinstance(v, dict):
                    for a, av in v.items():
                        _check_field("adjoint", a)
                        put((name, "adjoint", a), av, f"{name}.adjoint.{a}")
                else:
                    put((name, key), v, f"{name}.{key}")
        elif name in ROUTES:
            put(ROUTES[name], value, name)
        else:
            raise ValueError(f"unknown fit option {name!r}; valid: the sections {', '.join(SECTIONS)} (as dicts) "
                             f"or a flat name: {', '.join(sorted(ROUTES))}")
    return out


def _check_field(section: str, key: str) -> None:
    cls = AdjointConfig if section == "adjoint" else SECTIONS[section]
    names = [f.name for f in dataclasses.fields(cls)]
    if key not in names:
        raise ValueError(f"unknown option {key!r} in section {section!r}; valid: {', '.join(names)}")


_MISSING = object()


def _get(config: Dict[str, Any], path: Tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def flat_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """A recorded config by flat names: grouped (results of this version) or already flat (older files)."""
    if not isinstance(config.get("train"), dict):
        return dict(config)
    return {name: v for name, path in ROUTES.items() if (v := _get(config, path)) is not _MISSING}
