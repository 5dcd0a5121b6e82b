"""The `Scheme` base class: a scheme declares its name, order and kind; the registry maps names to them."""
from __future__ import annotations

from typing import ClassVar, Dict, Type


class Scheme:
    """A time-integration scheme. Subclasses set ``name``, ``order`` and whether they are ``adaptive`` or
    ``implicit``; torchdiffeq-backed schemes also set ``method`` (torchdiffeq's name) and ``stages``
    (evaluations of f per step, for fixed-step schemes)."""

    name: ClassVar[str]
    order: ClassVar[int]
    adaptive: ClassVar[bool] = False
    implicit: ClassVar[bool] = False
    stages: ClassVar[int] = 0
    method: ClassVar[str] = ""


SCHEMES: Dict[str, Type[Scheme]] = {}
ALIASES = {"implicit-euler": "implicit_euler", "backward_euler": "implicit_euler",
           "backward-euler": "implicit_euler", "crank-nicolson": "crank_nicolson", "cn": "crank_nicolson",
           "dopri": "dopri5", "rk45": "dopri5", "bs3": "bosh3", "explicit_euler": "euler"}


def register(cls: Type[Scheme]) -> Type[Scheme]:
    SCHEMES[cls.name] = cls
    return cls


def get_scheme(name: str) -> Type[Scheme]:
    key = ALIASES.get(name, name)
    if key not in SCHEMES:
        raise ValueError(f"unknown scheme {name!r}; valid: {', '.join(SCHEMES)} (aliases: {', '.join(ALIASES)})")
    return SCHEMES[key]
