"""Training: ``fit()``, its validated config and presets, results, checkpoints."""
from .config import PRESETS, FitConfig
from .fit import build_model, fit
from .guards import TrainingDivergedError
from .result import FitResult, RunResult

__all__ = ["fit", "FitConfig", "FitResult", "RunResult", "PRESETS", "build_model", "TrainingDivergedError"]
