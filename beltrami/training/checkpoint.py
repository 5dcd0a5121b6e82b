"""Checkpoints: model, optimiser, RNG states, epoch and history, written atomically and loaded with
``weights_only=True`` (no pickle code runs on load)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_torch_save


def _rng_state() -> Dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                                                      "has_gauss": has_gauss, "gauss": gauss},
            "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]}}


def _set_rng_state(s: Dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    n = s["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = s["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, state: Dict[str, Any]) -> None:
    atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": _rng_state(),
                       "epoch": state["epoch"], "history": state["history"], "best": state["best"]}, path)


def load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer) -> Dict[str, Any]:
    ck = torch.load(path, weights_only=True)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    _set_rng_state(ck["rng"])
    return {"epoch": ck["epoch"], "history": ck["history"], "best": ck["best"]}
