"""The local fallback engine: Optuna's TPE sampler in this process, one trial after another."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping

from .space import Choice, Domain, LogUniform

TrialFn = Callable[[Dict[str, Any], str], Dict[str, Any]]


def _suggest(trial, name: str, dom: Domain) -> Any:
    if isinstance(dom, Choice):
        return trial.suggest_categorical(name, list(dom.options))
    return trial.suggest_float(name, dom.low, dom.high, log=isinstance(dom, LogUniform))


def run(space: Mapping[str, Domain], trials: int, seed: int, trial_fn: TrialFn, out_dir: Path,
        **_: Any) -> List[Dict[str, Any]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    rows: List[Dict[str, Any]] = []

    def objective(trial) -> float:
        params = {name: _suggest(trial, name, dom) for name, dom in space.items()}
        try:
            metrics = trial_fn(params, f"{trial.number:03d}")
        except Exception as err:  # a failed trial (solver underflow, ...) is recorded; the sweep goes on
            rows.append({"trial": f"{trial.number:03d}", "params": params, "error": f"{type(err).__name__}: {err}"})
            raise
        rows.append({"trial": f"{trial.number:03d}", "params": params, **metrics})
        return metrics["val_acc"]

    study.optimize(objective, n_trials=trials, catch=(Exception,))
    return rows

