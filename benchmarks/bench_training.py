"""Accuracy, NFE and time of training runs tracked across commits (asv). Full grid: BELTRAMI_ASV_FULL=1."""
import os

import beltrami

FULL = bool(os.environ.get("BELTRAMI_ASV_FULL"))
SMOKE = bool(os.environ.get("BELTRAMI_ASV_SMOKE"))  # the test suite's check that every benchmark runs
DATASETS = ["cora", "citeseer", "synthetic-arxiv"] if FULL else ["cora"]
SCHEMES = ["rk4", "dopri5", "implicit_euler"] if FULL else ["rk4", "implicit_euler"]
BACKPROP = ["direct", "adjoint"]


class TrainBLEND:
    params = (DATASETS, SCHEMES, BACKPROP)
    param_names = ["dataset", "scheme", "backprop"]
    timeout = 1800

    def setup_cache(self):
        results = {}
        for d in DATASETS:
            for s in SCHEMES:
                for b in BACKPROP:
                    kw = {"step_size": 1.0} if s != "dopri5" else {"step_size": None, "rtol": 1e-3, "atol": 1e-4}
                    epochs = 3 if d == "synthetic-arxiv" or SMOKE else 30
                    try:
                        r = beltrami.fit(d, preset="fast", scheme=s, backprop=b, epochs=epochs, progress=False, **kw)
                        results[(d, s, b)] = (r.test_acc, r.nfe_forward, r.nfe_backward, r.seconds_per_epoch,
                                              r.peak_memory_bytes)
                    except beltrami.DatasetFileError:
                        results[(d, s, b)] = None
        return results

    def _get(self, results, key, i):
        if results[key] is None:
            raise NotImplementedError("dataset files missing")
        return results[key][i]

    def track_test_accuracy(self, results, d, s, b):
        return self._get(results, (d, s, b), 0)
    track_test_accuracy.unit = "accuracy"

    def track_nfe_forward(self, results, d, s, b):
        return self._get(results, (d, s, b), 1)
    track_nfe_forward.unit = "evaluations"

    def track_nfe_backward(self, results, d, s, b):
        return self._get(results, (d, s, b), 2)
    track_nfe_backward.unit = "evaluations"

    def track_seconds_per_epoch(self, results, d, s, b):
        return self._get(results, (d, s, b), 3)
    track_seconds_per_epoch.unit = "seconds"
