"""Ray Tune: trials run in parallel Ray workers, locally (one CPU each) or on a cluster (``address``).

The search algorithm is Optuna's TPE through Ray's ``OptunaSearch`` when Optuna is installed (the same
sampler as the local fallback), else Ray's random search.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from .space import Choice, Domain, LogUniform
from .trial import METRICS

TrialFn = Callable[[Dict[str, Any], str], Dict[str, Any]]


def _ray_domain(dom: Domain):
    from ray import tune

    if isinstance(dom, Choice):
        return tune.choice(list(dom.options))
    if isinstance(dom, LogUniform):
        return tune.loguniform(dom.low, dom.high)
    return tune.uniform(dom.low, dom.high)


def run(space: Mapping[str, Domain], trials: int, seed: int, trial_fn: TrialFn, out_dir: Path,
        address: Optional[str] = None, cpus_per_trial: float = 1.0, max_concurrent: Optional[int] = None,
        **_: Any) -> List[Dict[str, Any]]:
    import ray
    from ray import tune

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)

    def trainable(config: Dict[str, Any]) -> None:
        tune.report(trial_fn(config, tune.get_context().get_trial_id()))

    try:
        from ray.tune.search.optuna import OptunaSearch

        search = OptunaSearch(seed=seed)
    except ImportError:  # optuna absent: Ray's own random search
        search = None
    if max_concurrent is not None and search is not None:
        from ray.tune.search import ConcurrencyLimiter

        search = ConcurrencyLimiter(search, max_concurrent=max_concurrent)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus_per_trial}),
        param_space={name: _ray_domain(dom) for name, dom in space.items()},
        # reuse_actors: a new Ray worker per trial costs ~30 s (process start, torch import) on this machine
        tune_config=tune.TuneConfig(num_samples=trials, metric="val_acc", mode="max", search_alg=search,
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(Path(out_dir).resolve() / "ray"), name="sweep", verbose=0),
    )
    grid = tuner.fit()
    rows = []
    for res in grid:
        number = (res.metrics or {}).get("trial_id", "?")
        if res.error is not None or "val_acc" not in (res.metrics or {}):
            rows.append({"trial": number, "params": dict(res.config or {}), "error": str(res.error)})
            continue
        rows.append({"trial": number, "params": dict(res.config),
                     **{k: res.metrics[k] for k in METRICS}})
    return rows
