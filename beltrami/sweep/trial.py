"""One trial of a sweep: train with the sampled options, save the FitResult JSON, return the metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..training import fit
from .space import to_fit_options


def run_trial(dataset: str, preset: Optional[str], base: Mapping[str, Any], out_dir: Path,
              params: Mapping[str, Any], name: str) -> Dict[str, Any]:
    """Fit ``dataset`` with ``base`` options overridden by ``params``; write ``trial-<name>.json`` in ``out_dir``."""
    options = {**base, **to_fit_options(params), "progress": False}
    path = Path(out_dir) / f"trial-{name}.json"
    res = fit(dataset, preset=preset, **options)
    res.config["extras"] = {**res.config.get("extras", {}), "sweep_trial": name, "sweep_params": dict(params)}
    res.save(path)
    return {"val_acc": res.val_acc, "test_acc": res.test_acc, "test_acc_std": res.test_acc_std,
            "seconds_per_epoch": res.seconds_per_epoch, "nfe_forward": res.nfe_forward, "path": str(path)}
