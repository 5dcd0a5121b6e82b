"""`FitResult`: what a training run returns and saves (atomically, as JSON), with provenance."""
from __future__ import annotations

import functools
import json
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..atomic import atomic_write_text
from .sections import flat_config


def versions() -> Dict[str, str]:
    import numpy
    import scipy
    import torch

    from ..version import __version__

    return {"beltrami": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": numpy.__version__, "scipy": scipy.__version__, "platform": platform.platform()}


@functools.lru_cache(maxsize=None)
def git_commit() -> Optional[str]:
    """The commit of the beltrami checkout this process imported, if it is one (None otherwise), with
    ``-dirty`` appended when the package's tracked files differed from it. Read once, at the first call
    (the first fit or benchmark of the process, whose code is imported by then), not at import: ``import
    beltrami`` runs no ``git``. Later calls give the same answer, whatever the checkout holds by then: the code
    a process runs is the code it imported (``tools/reproduce.py`` trains row after row in one process)."""
    return _read_git_commit()


def _read_git_commit() -> Optional[str]:
    package = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True, timeout=5)
        if head.returncode != 0 or not head.stdout.strip():
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."], cwd=package,
                                capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")



@dataclass
class RunResult:
    """One seed: accuracies at the best-validation epoch and the per-epoch history."""

    seed: int
    best_epoch: int
    train_acc: float
    val_acc: float
    test_acc: float
    seconds_per_epoch: float
    nfe_forward: List[int] = field(default_factory=list)
    nfe_backward: List[int] = field(default_factory=list)
    history: List[Dict[str, float]] = field(default_factory=list)
    best_time: Optional[float] = None   # the integration time of the best evaluation (``select_time``)
    eval_seconds_per_epoch: float = 0.0  # the evaluation after each training step (mean)
    startup_seconds: float = 0.0        # data, encodings and model until the first epoch starts

    @property
    def epoch_seconds(self) -> float:
        """Mean time of a whole epoch as a user waits for it: the training step and its evaluation."""
        return self.seconds_per_epoch + self.eval_seconds_per_epoch


# Options that do not change what is trained (seeds, notes, run-time switches): merged results may differ in them.
_NOT_TRAINING = {"seed", "seeds", "runs", "extras", "progress", "keep_freed_memory", "pool_memory",
                 "sparse_backend",
                 "checkpoint_dir", "checkpoint_every", "resume"}


@dataclass
class FitResult:
    """Mean and standard deviation over runs of the accuracies (at each run's best validation epoch), NFE
    per epoch, time, memory, parameter count, the full config, versions and commit.

    Times: ``seconds_per_epoch`` is the training step alone (forward, backward, optimiser),
    ``eval_seconds_per_epoch`` the evaluation after it, ``epoch_seconds`` both (what a user waits for);
    ``startup_seconds`` the data, encodings and model before a run's first epoch (mean over runs), and
    ``wall_seconds`` the whole :func:`~beltrami.fit` call."""

    dataset: str
    model: str
    train_acc: float
    val_acc: float
    test_acc: float
    train_acc_std: float
    val_acc_std: float
    test_acc_std: float
    seconds_per_epoch: float
    nfe_forward: float          # mean per training epoch over all runs
    nfe_backward: float
    peak_memory_bytes: int
    num_parameters: int
    config: Dict[str, Any]
    runs: List[RunResult]
    versions: Dict[str, str] = field(default_factory=versions)
    commit: Optional[str] = field(default_factory=git_commit)
    eval_seconds_per_epoch: float = 0.0
    startup_seconds: float = 0.0
    wall_seconds: float = 0.0
    # The last run's model with its best-validation weights and its positional coordinates (not saved).
    trained_model: Any = field(default=None, repr=False, compare=False)
    pos: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_runs(cls, dataset: str, model: str, runs: List[RunResult], peak: int, params: int,
                  config: Dict[str, Any], commit: Optional[str] = None) -> "FitResult":
        def mean_std(values: List[float]):
            return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

        tr, tr_s = mean_std([r.train_acc for r in runs])
        va, va_s = mean_std([r.val_acc for r in runs])
        te, te_s = mean_std([r.test_acc for r in runs])
        nf = [n for r in runs for n in r.nfe_forward] or [0]
        nb = [n for r in runs for n in r.nfe_backward] or [0]
        return cls(dataset, model, tr, va, te, tr_s, va_s, te_s,
                   statistics.fmean(r.seconds_per_epoch for r in runs), statistics.fmean(nf), statistics.fmean(nb),
                   peak, params, config, runs, commit=commit,
                   eval_seconds_per_epoch=statistics.fmean(r.eval_seconds_per_epoch for r in runs),
                   startup_seconds=statistics.fmean(r.startup_seconds for r in runs))

    @classmethod
    def merge(cls, parts: List["FitResult"]) -> "FitResult":
        """One result from results of one configuration on disjoint seeds: a row completed in several
        sittings. The configs must agree on every option that changes training (the device too); seeds,
        notes and run-time switches may differ, and options a part predates count at their defaults. The
        merged result takes the newest (last) part's commit and versions and lists every part's in
        ``config["run"]["extras"]["merged_from"]``."""
        from .config import FitConfig

        if not parts:
            raise ValueError("nothing to merge")
        defaults = FitConfig().flat()

        def training_options(config: Dict[str, Any]) -> Dict[str, Any]:
            cfg = flat_config(config)
            return {k: cfg.get(k, defaults.get(k)) for k in set(defaults) | set(cfg) if k not in _NOT_TRAINING}

        first = parts[0]
        for part in parts[1:]:
            if (part.dataset, part.model) != (first.dataset, first.model):
                raise ValueError(f"cannot merge {part.model} on {part.dataset} into {first.model} on {first.dataset}")
            a, b = training_options(first.config), training_options(part.config)
            differ = sorted(k for k in a if a[k] != b.get(k))
            if differ:
                raise ValueError(f"cannot merge results whose configs differ in {', '.join(differ)}")
        seeds = [r.seed for part in parts for r in part.runs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"cannot merge results that share seeds: {sorted(seeds)}")
        runs = sorted((r for part in parts for r in part.runs), key=lambda r: r.seed)
        cfg = FitConfig.from_dict(parts[-1].config)
        cfg.run.seeds = [r.seed for r in runs]
        sittings = [m for p in parts for m in flat_config(p.config).get("extras", {}).get("merged_from")  # merged
                    or [{"commit": p.commit, "seeds": [r.seed for r in p.runs], "versions": p.versions}]]
        cfg.run.extras = {**cfg.run.extras, "merged_from": sittings}
        config = cfg.to_dict()
        out = cls.from_runs(first.dataset, first.model, runs, max(p.peak_memory_bytes for p in parts),
                            parts[-1].num_parameters, config, parts[-1].commit)
        out.versions = parts[-1].versions
        return out

    @property
    def seconds_per_epoch_median(self) -> float:
        """Median epoch time over all runs: the steady state, without the first epoch's warm-up (CUDA context,
        ``torch.compile``), which the mean ``seconds_per_epoch`` includes."""
        times = [h["seconds"] for r in self.runs for h in r.history]
        return statistics.median(times) if times else self.seconds_per_epoch

    @property
    def epoch_seconds(self) -> float:
        """Mean whole epoch, training step and evaluation."""
        return self.seconds_per_epoch + self.eval_seconds_per_epoch

    @property
    def epoch_seconds_median(self) -> float:
        """Median whole epoch (training step and evaluation) over all runs."""
        times = [h["seconds"] + h.get("eval_seconds", 0.0) for r in self.runs for h in r.history]
        return statistics.median(times) if times else self.epoch_seconds

    @property
    def history(self) -> List[Dict[str, float]]:
        """The first run's per-epoch history."""
        return self.runs[0].history if self.runs else []

    def to_dict(self) -> Dict[str, Any]:
        model, pos = self.trained_model, self.pos
        self.trained_model = self.pos = None
        try:
            d = asdict(self)
        finally:
            self.trained_model, self.pos = model, pos
        d.pop("trained_model")
        d.pop("pos")
        return d

    def save(self, path) -> None:
        """Write as JSON atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, default=str))

    @classmethod
    def load(cls, path) -> "FitResult":
        d = json.loads(Path(path).read_text())
        d["runs"] = [RunResult(**r) for r in d["runs"]]
        return cls(**d)

    def summary(self) -> str:
        return (f"{self.model} on {self.dataset}: test {100 * self.test_acc:.1f} ± {100 * self.test_acc_std:.1f} "
                f"(val {100 * self.val_acc:.1f}), {len(self.runs)} run(s), {self.epoch_seconds:.3f} s/epoch "
                f"({self.seconds_per_epoch:.3f} training, {self.eval_seconds_per_epoch:.3f} evaluation), "
                f"NFE {self.nfe_forward:.0f}/{self.nfe_backward:.0f}, {self.num_parameters} parameters")
