"""The paper's tuned BLEND on Cora and CiteSeer (asv): what a user of the presets waits for.

Each dataset trains in a fresh process (``beltrami-bench --preset paper --split fixed``, the official code's
split of the largest component), so the whole run's wall time includes interpreter start-up and import,
and the peak memory is that run's alone. Quick grid: 10 epochs; ``BELTRAMI_ASV_FULL=1``: the preset's own
(100 on Cora, 250 on CiteSeer), as the official runner trains.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FULL = bool(os.environ.get("BELTRAMI_ASV_FULL"))
SMOKE = bool(os.environ.get("BELTRAMI_ASV_SMOKE"))  # the test suite's check that every benchmark runs
DATASETS = ["cora"] if SMOKE else ["cora", "citeseer"]  # the smoke check needs no data beyond the embedded Cora


def run_preset(dataset: str, epochs):
    """One ``beltrami-bench`` process; its result row plus ``process_seconds`` (launch to exit); None where
    the dataset's files are missing."""
    from beltrami.bench.cli import file_status

    if not file_status(dataset, None).startswith(("verified", "embedded")):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        cmd = [sys.executable, "-m", "beltrami.bench", "--dataset", dataset, "--preset", "paper", "--split", "fixed",
               "--output", str(out)] + ([] if epochs is None else ["--epochs", str(epochs)])
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{(done.stdout + done.stderr)[-2000:]}")
        row = json.loads(out.read_text())["rows"][0]
    if row.get("error"):
        raise RuntimeError(row["error"])
    return {**row, "process_seconds": seconds}


class PaperPresetRun:
    params = [DATASETS]
    param_names = ["dataset"]
    timeout = 3600

    def setup_cache(self):
        epochs = 2 if SMOKE else (None if FULL else 10)
        return {d: run_preset(d, epochs) for d in DATASETS}

    def setup(self, rows, dataset):
        if rows[dataset] is None:
            raise NotImplementedError(f"{dataset}: data files missing (see beltrami-bench --summary-only)")

    def track_epoch_seconds(self, rows, dataset):
        """Median epoch: the training step and the evaluation after it."""
        return rows[dataset]["epoch_seconds_median"]
    track_epoch_seconds.unit = "seconds"

    def track_train_seconds(self, rows, dataset):
        return rows[dataset]["seconds_per_epoch_median"]
    track_train_seconds.unit = "seconds"

    def track_eval_seconds(self, rows, dataset):
        return rows[dataset]["eval_seconds_per_epoch"]
    track_eval_seconds.unit = "seconds"

    def track_startup_seconds(self, rows, dataset):
        """Data, encodings and model before the first epoch."""
        return rows[dataset]["startup_seconds"]
    track_startup_seconds.unit = "seconds"

    def track_process_seconds(self, rows, dataset):
        """The whole command, interpreter start and import included."""
        return rows[dataset]["process_seconds"]
    track_process_seconds.unit = "seconds"

    def track_peak_memory(self, rows, dataset):
        return rows[dataset]["peak_memory_MB"]
    track_peak_memory.unit = "MB"

    def track_test_accuracy(self, rows, dataset):
        return rows[dataset]["test_acc"]
    track_test_accuracy.unit = "accuracy"

    def track_nfe_forward(self, rows, dataset):
        return rows[dataset]["nfe_forward"]
    track_nfe_forward.unit = "evaluations"
