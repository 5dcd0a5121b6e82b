"""Hyper-parameter sweeps of :func:`beltrami.fit` on an existing engine.

``sweep(dataset, trials=20, engine="ray")`` samples the search space (default: the space the official
code searched, :data:`~beltrami.sweep.space.PAPER_SPACE`), trains one :func:`beltrami.fit` per point and
writes every trial's :class:`~beltrami.FitResult` JSON plus ``sweep.json`` (all trials, best by validation
accuracy) into ``output``. Engines: ``ray`` (Ray Tune, the ``[tune]`` extra; local, or a cluster with
``address=``), ``optuna`` (the local fallback: Optuna's TPE in this process).
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..atomic import atomic_write_text
from ..training.result import git_commit, versions
from ..validation import check_choice
from .space import PAPER_SPACE, Choice, Domain, LogUniform, Uniform, space_around, validate_space
from .trial import run_trial

ENGINES = ("ray", "optuna")


def sweep(dataset: str, *, trials: int = 20, engine: str = "ray", space: Optional[Mapping[str, Domain]] = None,
          preset: Optional[str] = "paper", output: str = "sweep", seed: int = 0, address: Optional[str] = None,
          max_concurrent: Optional[int] = None, **base: Any) -> Dict[str, Any]:
    """Run a sweep; returns the ``sweep.json`` content (``trials`` rows and ``best``).

    Args:
        dataset: dataset name (the trials load it themselves, so Ray workers need no data shipped).
        trials: number of sampled points. engine: ``ray`` or ``optuna``.
        space: parameter -> domain (default ``PAPER_SPACE``). preset: the base preset of every trial.
        output: directory for ``trial-NNN.json`` and ``sweep.json``. seed: the sampler's seed.
        address: a Ray cluster address (``ray`` engine; default: a local Ray on this machine's cores).
        max_concurrent: at most this many trials at once (``ray``; default: one per free CPU).
        base: fixed :func:`beltrami.fit` options of every trial (e.g. ``split="random"``, ``seeds=[0, 1]``).
    """
    check_choice(engine, ENGINES, "sweep engine")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    space = dict(PAPER_SPACE if space is None else space)
    validate_space(space)
    clash = sorted(set(space) & set(base))
    if clash:
        raise ValueError(f"option(s) {clash} are both searched and fixed")
    out_dir = Path(output).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    trial_fn = functools.partial(run_trial, dataset, preset, dict(base), out_dir)
    if engine == "ray":
        from . import ray_engine as impl
    else:
        from . import optuna_engine as impl
    start, commit = time.time(), git_commit()
    rows = impl.run(space, trials, seed, trial_fn, out_dir, address=address, max_concurrent=max_concurrent)
    rows.sort(key=lambda r: r["trial"])
    done = [r for r in rows if "val_acc" in r]
    summary = {
        "dataset": dataset, "engine": engine, "preset": preset, "base": base, "seed": seed, "trials": rows,
        "space": {k: _describe(v) for k, v in space.items()},
        "best": max(done, key=lambda r: r["val_acc"]) if done else None,
        "seconds": time.time() - start, "versions": versions(), "commit": commit,
    }
    atomic_write_text(out_dir / "sweep.json", json.dumps(summary, indent=1, default=str))
    return summary


def _describe(dom: Domain) -> Dict[str, Any]:
    if isinstance(dom, Choice):
        return {"choice": list(dom.options)}
    return {"loguniform" if isinstance(dom, LogUniform) else "uniform": [dom.low, dom.high]}


__all__ = ["sweep", "PAPER_SPACE", "space_around", "Uniform", "LogUniform", "Choice", "ENGINES"]
