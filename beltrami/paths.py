"""Where beltrami reads data and keeps caches."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .environment import read

PathLike = Union[str, os.PathLike]


def _cache_home() -> Path:
    return Path(read("XDG_CACHE_HOME") or Path.home() / ".cache") / "beltrami"


def data_root(root: Optional[PathLike] = None) -> Path:
    """The data root: ``root`` > ``$BELTRAMI_DATA`` > ``$XDG_CACHE_HOME/beltrami/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = read("BELTRAMI_DATA")
    if env:
        return Path(env).expanduser()
    return _cache_home() / "data"


def cache_dir() -> Path:
    """Where processed tensors and encodings are cached: ``$BELTRAMI_CACHE`` or ``~/.cache/beltrami``."""
    env = read("BELTRAMI_CACHE")
    return Path(env).expanduser() if env else _cache_home()
