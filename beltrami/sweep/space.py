"""Search spaces, engine-neutral: each parameter is a :class:`Uniform`, :class:`LogUniform` or
:class:`Choice`; the engines (Ray Tune, Optuna) translate them to their own distributions.

``PAPER_SPACE`` is the space the official code searched for BLEND on Cora (its Ray Tune script
``set_cora_search_space``, with the positional-encoding entries of its BLEND space), in our option names:
``tol_scale`` is the official tolerance scale (``atol = tol_scale 1e-7``, ``rtol = tol_scale 1e-9``).
:func:`space_around` is a local space instead: the training values of a tuned configuration (a preset's),
each within a factor or a band of itself, the architecture kept.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Sequence, Union

from ..training.config import FitConfig


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float


@dataclass(frozen=True)
class Choice:
    options: Sequence[Any]


Domain = Union[Uniform, LogUniform, Choice]

# Parameters that are not FitConfig fields but map onto several of them.
DERIVED = ("tol_scale",)

PAPER_SPACE: Dict[str, Domain] = {
    "weight_decay": LogUniform(1e-3, 0.1),
    "lr": Uniform(0.01, 0.2),
    "optimizer": Choice(("adam", "adamax")),
    "dropout": Uniform(0.0, 0.15),
    "time": Uniform(10.0, 30.0),
    "heads": Choice((1, 2, 4, 8)),
    "attention_dim": Choice((16, 32, 64, 128)),
    "tol_scale": LogUniform(1.0, 1e4),
    "hidden": Choice((32, 64)),
    "pos_dim": Choice((16, 32)),
    "normalisation": Choice(("softmax", "squareplus")),
}


# the values space_around varies: rates, regularisation and the integration time, each on a log scale
# within a factor of the tuned value; dropouts (probabilities) within an additive band
AROUND_LOG = ("lr", "weight_decay", "time")
AROUND_BAND = ("dropout", "input_dropout")


def space_around(values: Mapping[str, Any], factor: float = 2.0, band: float = 0.15) -> Dict[str, Domain]:
    """A search space around tuned ``values`` (e.g. ``preset_values("paper", "citeseer")``).

    ``lr``, ``weight_decay`` and ``time`` are drawn log-uniformly from ``[v / factor, v * factor]``,
    ``dropout`` and ``input_dropout`` uniformly from ``[v - band, v + band]`` clipped to ``[0, 0.95]``;
    a value missing from ``values`` (or ``None``) is left out. The architecture is not searched.
    """
    if not factor > 1:
        raise ValueError(f"factor must be > 1, got {factor}")
    if not 0 < band < 1:
        raise ValueError(f"band must be in (0, 1), got {band}")
    space: Dict[str, Domain] = {}
    for name in AROUND_LOG:
        v = values.get(name)
        if v is not None and v > 0:
            space[name] = LogUniform(v / factor, v * factor)
    for name in AROUND_BAND:
        v = values.get(name)
        if v is not None:
            space[name] = Uniform(max(0.0, v - band), min(0.95, v + band))
    return space


def validate_space(space: Mapping[str, Domain]) -> None:
    """Unknown keys or bad domains raise ValueError naming them."""
    valid = set(FitConfig.fields()) | set(DERIVED)
    bad = sorted(set(space) - valid)
    if bad:
        raise ValueError(f"unknown search-space key(s) {bad}; valid: FitConfig fields and {list(DERIVED)}")
    for name, dom in space.items():
        if isinstance(dom, Choice):
            if len(dom.options) == 0:
                raise ValueError(f"search-space {name!r}: Choice needs at least one option")
        elif isinstance(dom, (Uniform, LogUniform)):
            if not dom.low < dom.high or (isinstance(dom, LogUniform) and dom.low <= 0):
                raise ValueError(f"search-space {name!r}: bad bounds {dom.low}, {dom.high}")
        else:
            raise ValueError(f"search-space {name!r}: expected Uniform, LogUniform or Choice, got {dom!r}")


def to_fit_options(params: Mapping[str, Any]) -> Dict[str, Any]:
    """A sampled point as :func:`beltrami.fit` options (derived parameters expanded)."""
    out = {k: v for k, v in params.items() if k not in DERIVED}
    if "tol_scale" in params:
        out.update(atol=params["tol_scale"] * 1e-7, rtol=params["tol_scale"] * 1e-9)
    return out
