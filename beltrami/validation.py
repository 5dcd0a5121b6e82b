"""Input checks shared by the whole package: each raises a ValueError/TypeError naming the problem."""
from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Optional, Union

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


def check_node_input(x: Tensor, num_nodes: int, channels: int, name: str = "x") -> None:
    """A model's per-node input: a floating-point tensor (dense or sparse) of shape ``[num_nodes, channels]``
    (O(1): no pass over the values)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got dtype {x.dtype}")
    if tuple(x.shape) != (num_nodes, channels):
        raise ValueError(f"{name} must have shape [{num_nodes}, {channels}] (one row per node of the model's graph, "
                         f"{channels} channels), got {tuple(x.shape)}")


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


def check_int(value, name: str, minimum: Optional[int] = None) -> int:
    """``value`` as an int: an integer (Python or NumPy, not a bool, not a float such as 2.5 or 3.0) of at
    least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def optional_int(value: Optional[int], name: str, minimum: int = 0) -> Optional[int]:
    return None if value is None else check_int(value, name, minimum)


def check_real(value, name: str, low: Optional[float] = None, high: Optional[float] = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float (an int or float, not a bool or a string) in the interval from ``low`` to
    ``high`` (closed ends unless ``low_open`` / ``high_open``; ``None``: unbounded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or below or above:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise ValueError(f"{name} must be a finite number in {lo}, {hi}, got {value!r}")
    return value


def optional_real(value, name: str, low: Optional[float] = None, high: Optional[float] = None,
                  low_open: bool = False, high_open: bool = False) -> Optional[float]:
    return None if value is None else check_real(value, name, low, high, low_open, high_open)


def check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def check_writable_file(path: Union[str, os.PathLike], name: str) -> Path:
    """Refuse, before any work, a file path that cannot be written: a folder, or a file that cannot be
    opened for writing where it is. Tried for real (root passes every permission check ``os.access`` makes):
    missing parent folders are created and a probe file is made there and removed; an existing file is
    opened for appending, which changes nothing."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a folder; give a file path")
    try:
        if path.exists():
            with open(path, "ab"):
                pass
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
                pass
    except OSError as err:
        raise OSError(f"{name}={str(path)!r} cannot be written: {err.strerror or err}") from err
    return path
