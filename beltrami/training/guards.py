"""Training that cannot go on: a loss that is not finite or has exploded, or a training solve that fails,
stops the run with an error that keeps what was trained and measured until then."""
from __future__ import annotations

import math
from typing import Any, Optional

EXPLODED = 1e3
"""A training loss above this many times the run's first (and above 1) has diverged: cross-entropy starts
near log(classes), and a step size that works lowers it."""


class TrainingDivergedError(RuntimeError):
    """The loss became non-finite or exploded, or the training solve failed. ``result``: a
    :class:`~beltrami.FitResult` of the seeds finished before, and of this seed up to its last good epoch (its
    best-validation weights in ``result.trained_model``); None where not one epoch finished. Written to
    ``output`` when one was given."""

    def __init__(self, message: str, result: Optional[Any] = None) -> None:
        super().__init__(message)
        self.result = result


class Diverged(Exception):
    """Raised inside a run; :func:`beltrami.fit` turns it into :class:`TrainingDivergedError`."""

    def __init__(self, message: str, run: Optional[Any], model: Any) -> None:
        super().__init__(message)
        self.run, self.model = run, model


def divergence(loss: float, first: Optional[float], epoch: int, lr: float) -> Optional[str]:
    """Why training with this ``loss`` at ``epoch`` cannot go on (``first``: the run's first loss), or None."""
    if not math.isfinite(loss):
        what = f"the training loss is {loss}"
    elif first is not None and loss > EXPLODED * max(first, 1.0):
        what = f"the training loss exploded to {loss:.3g} (it started at {first:.3g})"
    else:
        return None
    return _advice(what, epoch, lr)


def solve_failure(error: Exception, epoch: int, lr: float) -> str:
    """Why training cannot go on when the training solve itself failed (a non-finite state, step underflow)."""
    return _advice(f"the training solve failed ({error})", epoch, lr)


def _advice(what: str, epoch: int, lr: float) -> str:
    return (f"{what} at epoch {epoch}: training diverged. Try a smaller lr than {lr:g}, or a smaller step or "
            "tighter tolerances for the solver; the epochs before are kept in this error's result")
