"""Every :class:`~beltrami.training.config.FitConfig` value checked before any work starts: its type, its
range, and the combinations of options that cannot work together. Each error names the option, the value
and what is allowed."""
from __future__ import annotations

import math
from typing import Any

import torch

from ..functions.attention import INITS, KINDS, NORMALISATIONS, NORMALISE_OVER
from ..solvers.base import get_scheme
from ..validation import (check_bool, check_choice, check_int, check_real, optional_int, optional_real)

INF = math.inf
# option: smallest value
INTS = {"epochs": 1, "runs": 1, "hidden": 1, "heads": 1, "pos_dim": 1, "rewire_k": 1, "attention_dim": 1,
        "select_time_points": 1, "deepwalk_dim": 1, "hyperbolic_dim": 1, "max_steps": 1, "seed": 0,
        "rewire_every": 0, "checkpoint_every": 0}
OPTIONAL_INTS = {"patience": 1, "ppr_topk": 1}
# option: (low, high, low_open, high_open)
REALS = {"lr": (0.0, None, True, False), "time": (0.0, None, True, False), "weight_decay": (0.0, None, False, False),
         "kinetic": (0.0, None, False, False), "jacobian": (0.0, None, False, False),
         "ppr_alpha": (0.0, 1.0, True, True), "input_dropout": (0.0, 1.0, False, True),
         "dropout": (0.0, 1.0, False, True), "select_time": (0.0, None, False, False)}
OPTIONAL_REALS = {"pos_dropout": (0.0, 1.0, False, True), "adjoint_step_size": (0.0, None, True, False),
                  "adjoint_rtol": (0.0, None, False, False), "adjoint_atol": (0.0, None, False, False)}
BOOLS = ("self_loops", "frozen", "add_source", "detach_source", "separate_diffusivity", "resume", "progress", "pool_memory",
         "keep_freed_memory")


def check_config(cfg: Any) -> None:
    """Raise ValueError/TypeError for the first value of ``cfg`` (a FitConfig) that cannot be used."""
    for name, low in INTS.items():
        setattr(cfg, name, check_int(getattr(cfg, name), name, low))
    for name, low in OPTIONAL_INTS.items():
        setattr(cfg, name, optional_int(getattr(cfg, name), name, low))
    for name, bounds in REALS.items():
        setattr(cfg, name, check_real(getattr(cfg, name), name, *bounds))
    for name, bounds in OPTIONAL_REALS.items():
        setattr(cfg, name, optional_real(getattr(cfg, name), name, *bounds))
    for name in BOOLS:
        check_bool(getattr(cfg, name), name)
    if cfg.lcc is not None:
        check_bool(cfg.lcc, "lcc")
    check_choice(cfg.attention_kind, KINDS, "attention_kind")
    check_choice(cfg.normalisation, NORMALISATIONS, "normalisation")
    check_choice(cfg.normalise_over, NORMALISE_OVER, "normalise_over")
    check_choice(cfg.attention_init, INITS, "attention_init")
    _check_seeds(cfg)
    _check_device(cfg.device)
    _check_solver(cfg)
    _check_checkpoints(cfg)


def _check_seeds(cfg: Any) -> None:
    if cfg.seeds is None:
        return
    if isinstance(cfg.seeds, (str, bytes)) or not hasattr(cfg.seeds, "__iter__"):
        raise TypeError(f"seeds must be a list of ints, got {cfg.seeds!r}")
    cfg.seeds = [check_int(s, "each of seeds", 0) for s in cfg.seeds]
    if not cfg.seeds:
        raise ValueError("seeds=[] names no run: give at least one seed (or leave seeds out and use seed/runs)")


def _check_device(device: Any) -> None:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}, but PyTorch sees no CUDA device here (torch {torch.__version__}); "
                         "use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def _check_solver(cfg: Any) -> None:
    from ..solvers.solve import check_step_options

    cls = get_scheme(cfg.scheme)
    check_step_options(cls, cfg.step_size, cfg.rtol, cfg.atol)
    if cfg.adjoint_scheme is not None:
        get_scheme(cfg.adjoint_scheme)
    if cls.implicit and cfg.compile == "script":
        raise ValueError(f"compile='script' applies to explicit and adaptive schemes; implicit schemes "
                         f"(scheme={cfg.scheme!r}) solve with the function's linear operator, which TorchScript "
                         "does not keep: use compile='eager' or 'compile'")


def _check_checkpoints(cfg: Any) -> None:
    if cfg.checkpoint_dir is None:
        if cfg.checkpoint_every:
            raise ValueError(f"checkpoint_every={cfg.checkpoint_every} needs checkpoint_dir: where to write them")
        if cfg.resume:
            raise ValueError("resume=True needs checkpoint_dir: where the checkpoints to resume from are")
    elif not cfg.checkpoint_every and not cfg.resume:
        raise ValueError(f"checkpoint_dir={cfg.checkpoint_dir!r} with checkpoint_every=0 writes no checkpoint: "
                         "give checkpoint_every >= 1")
