"""On-disk cache of processed tensors (datasets, encodings), keyed by content hashes and options.

Entries are written atomically and loaded with ``weights_only=True``; an entry that fails to load is
reported, removed and recomputed. Writes are best effort: a read-only cache folder only costs speed.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from .atomic import atomic_torch_save
from .paths import cache_dir
from .version import __version__


def cache_key(*parts: Any) -> str:
    """A stable hex key for JSON-able ``parts`` (the package version is always part of it)."""
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _path(kind: str, key: str) -> Path:
    return cache_dir() / "processed" / kind / f"{key}.pt"


def load(kind: str, key: str) -> Optional[Any]:
    path = _path(kind, key)
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception as err:  # any unreadable entry: drop it and recompute
        warnings.warn(f"cache entry {path} is corrupt ({type(err).__name__}: {err}); recomputing", stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def save(kind: str, key: str, obj: Any) -> None:
    try:
        atomic_torch_save(obj, _path(kind, key))
    except OSError as err:
        warnings.warn(f"could not write cache entry {_path(kind, key)}: {err}", stacklevel=2)


def cached(kind: str, key: str, compute: Callable[[], Any], force: bool = False) -> Any:
    """Return the cached value for ``(kind, key)``, computing and storing it when absent (or ``force``)."""
    if not force:
        hit = load(kind, key)
        if hit is not None:
            return hit
    value = compute()
    save(kind, key, value)
    return value
