"""Every :class:`~beltrami.training.config.FitConfig` value checked before any work starts: its type, its
range, and the combinations of options that cannot work together. Each error names the option (by its flat
name), the value and what is allowed."""
from __future__ import annotations

import math
from typing import Any

import torch

from ..functions.attention import INITS, KINDS, NORMALISATIONS, NORMALISE_OVER
from ..solvers.base import get_scheme
from ..sparse.spmm import check_backend_device
from ..validation import (check_bool, check_choice, check_int, check_real, optional_int, optional_real)
from .sections import ROUTES

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
         "keep_freed_memory", "rewire_symmetric")


def _check_each(cfg: Any, names, check) -> None:
    """``check(value, flat_name, *args)`` on each named option, in its section; the checked value replaces it
    (an int given as a float, say)."""
    for name, args in (names.items() if isinstance(names, dict) else ((n, ()) for n in names)):
        *path, field = ROUTES[name]
        section = cfg
        for key in path:
            section = getattr(section, key)
        args = args if isinstance(args, tuple) else (args,)
        setattr(section, field, check(getattr(section, field), name, *args))


def check_config(cfg: Any) -> None:
    """Raise ValueError/TypeError for the first value of ``cfg`` (a FitConfig) that cannot be used."""
    _check_each(cfg, INTS, check_int)
    _check_each(cfg, OPTIONAL_INTS, optional_int)
    _check_each(cfg, REALS, check_real)
    _check_each(cfg, OPTIONAL_REALS, optional_real)
    _check_each(cfg, BOOLS, check_bool)
    if cfg.data.lcc is not None:
        check_bool(cfg.data.lcc, "lcc")
    m = cfg.model
    check_choice(m.attention_kind, KINDS, "attention_kind")
    check_choice(m.normalisation, NORMALISATIONS, "normalisation")
    check_choice(m.normalise_over, NORMALISE_OVER, "normalise_over")
    check_choice(m.attention_init, INITS, "attention_init")
    _check_seeds(cfg.run)
    _check_device(cfg.run.device)
    check_backend_device(cfg.run.sparse_backend, cfg.run.device)
    _check_solver(cfg.solver, cfg.run.compile)
    _check_checkpoints(cfg.run)


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


def _check_solver(cfg: Any, compile_mode: str) -> None:
    from ..solvers.solve import check_step_options

    cls = get_scheme(cfg.scheme)
    check_step_options(cls, cfg.step_size, cfg.rtol, cfg.atol)
    if cfg.adjoint.scheme is not None:
        get_scheme(cfg.adjoint.scheme)
    if cls.implicit and compile_mode == "script":
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
