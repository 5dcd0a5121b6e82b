"""Input checks shared by the whole package: each raises a ValueError/TypeError naming the problem."""
from __future__ import annotations

from typing import Iterable, Mapping, Optional

import torch
from torch import Tensor


def check_index_tensor(t: Tensor, name: str) -> Tensor:
    """Return ``t`` as int64, refusing floating-point or boolean index tensors."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers, got dtype {t.dtype}")
    return t.long()


def check_finite(t: Tensor, name: str) -> None:
    """Raise ValueError if ``t`` holds NaN or Inf, saying how many and where the first one is."""
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = (~torch.isfinite(t)).nonzero()
        raise ValueError(
            f"{name} holds {bad.shape[0]} non-finite value(s) (NaN/Inf); first at index {tuple(bad[0].tolist())}"
        )


def check_features(x: Tensor, num_nodes: int, name: str = "x") -> None:
    """Node features: a finite floating-point tensor of shape [num_nodes, d]."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [num_nodes, d], got shape {tuple(x.shape)}")
    if x.shape[0] != num_nodes:
        raise ValueError(f"{name} has {x.shape[0]} rows but the graph has {num_nodes} nodes")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got dtype {x.dtype}")
    check_finite(x, name)


def check_options(given: Mapping | Iterable[str], valid: Iterable[str], what: str) -> None:
    """Raise ValueError listing every unknown key of ``given`` and the valid ones."""
    valid = sorted(valid)
    bad = sorted(k for k in given if k not in valid)
    if bad:
        raise ValueError(f"unknown {what}: {', '.join(map(repr, bad))}; valid: {', '.join(valid)}")


def check_choice(value: str, valid: Iterable[str], what: str) -> str:
    """Raise ValueError if ``value`` is not one of ``valid``."""
    valid = list(valid)
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(map(str, valid))}")
    return value


def optional_int(value: Optional[int], name: str, minimum: int = 0) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value
