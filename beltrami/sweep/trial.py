"""One trial of a sweep: train with the sampled options, save the FitResult JSON, return the metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..training import fit
from .space import to_fit_options

# What a trial reports (and every engine copies into the sweep's rows).
METRICS = ("val_acc", "test_acc", "test_acc_std", "seconds_per_epoch", "nfe_forward", "path")


def run_trial(dataset: str, preset: Optional[str], base: Mapping[str, Any], out_dir: Path,
              params: Mapping[str, Any], name: str) -> Dict[str, Any]:
    """Fit ``dataset`` with ``base`` options overridden by ``params``; write ``trial-<name>.json`` in ``out_dir``."""
    options = {**base, **to_fit_options(params), "progress": False}
    path = Path(out_dir) / f"trial-{name}.json"
    res = fit(dataset, preset=preset, **options)
    notes = res.config["run"]["extras"]
    res.config["run"]["extras"] = {**notes, "sweep_trial": name, "sweep_params": dict(params)}
    res.save(path)
    values = {"path": str(path)}
    return {k: values[k] if k in values else getattr(res, k) for k in METRICS}
