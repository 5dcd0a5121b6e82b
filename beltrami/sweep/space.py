"""Search spaces, engine-neutral: each parameter is a :class:`Uniform`, :class:`LogUniform` or
:class:`Choice`; the engines (Ray Tune, Optuna) translate them to their own distributions.

``PAPER_SPACE`` is the space the official code searched for BLEND on Cora (its Ray Tune script
``set_cora_search_space``, with the positional-encoding entries of its BLEND space), in our option names:
``tol_scale`` is the official tolerance scale (``atol = tol_scale 1e-7``, ``rtol = tol_scale 1e-9``).
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
