"""Checkpoints: model, optimiser, RNG states, epoch, history and the training options, written atomically
and loaded with ``weights_only=True`` (no pickle code runs on load). A resume refuses a checkpoint written
with other training options, naming them; only ``epochs`` may grow."""
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


def training_options(config: Dict[str, Any]) -> Dict[str, Any]:
    """The options that decide what a run trains (seeds, notes and run-time switches left out; ``epochs``
    too, which a resume may raise)."""
    from .result import _NOT_TRAINING

    return {k: v for k, v in config.items() if k not in _NOT_TRAINING and k != "epochs"}


def save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, state: Dict[str, Any],
                    config: Dict[str, Any]) -> None:
    atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": _rng_state(),
                       "epoch": state["epoch"], "history": state["history"], "best": state["best"],
                       "config": training_options(config)}, path)


def load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, config: Dict[str, Any]
                    ) -> Dict[str, Any]:
    """Restore a run from ``path``; ``config``: this run's options, which must train what the checkpoint's did.

    Raises:
        ValueError: the file cannot be read (truncated, corrupt, not a checkpoint), it was written with other
            training options (listed), or it is past this run's ``epochs``."""
    try:
        ck = torch.load(path, weights_only=True)
        saved = ck["config"]
    except Exception as err:  # torch raises OSError, RuntimeError or an unpickling error; KeyError: no config
        raise ValueError(f"checkpoint {path} cannot be resumed from ({type(err).__name__}: {err}); it is "
                         "truncated, corrupt or from an older beltrami: delete it to start this run over") from err
    now = training_options(config)
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if changed:
        diff = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ValueError(f"checkpoint {path} was written by a run with other options ({diff}); resume continues "
                         "the same run only: give its values, or delete the checkpoint to start over")
    if ck["epoch"] > config["epochs"]:
        raise ValueError(f"checkpoint {path} is at epoch {ck['epoch']}, past epochs={config['epochs']}: give "
                         f"epochs >= {ck['epoch']}, or delete the checkpoint to start over")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    _set_rng_state(ck["rng"])
    return {"epoch": ck["epoch"], "history": ck["history"], "best": ck["best"]}
