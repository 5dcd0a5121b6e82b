"""What fit() refuses or stops on, keeping what it computed: bad data handed as tensors, an output it could not
write, a diverging loss, and checkpoints that do not belong to the run resuming from them."""

import pytest
import torch

import beltrami
from beltrami import Dataset, FitResult, TrainingDivergedError

N = 60


def _tensors(**change):
    g = torch.Generator().manual_seed(0)
    masks = [torch.zeros(N, dtype=torch.bool) for _ in range(3)]
    for i, m in enumerate(masks):
        m[20 * i:20 * (i + 1)] = True
    d = dict(edge_index=torch.randint(0, N, (2, 300), generator=g), x=torch.randn(N, 8, generator=g),
             y=torch.randint(0, 3, (N,), generator=g), masks=tuple(masks))
    d.update(change)
    return d["edge_index"], d["x"], d["y"], d["masks"]


FAST = dict(preset="fast", epochs=2, progress=False)


def _trained(res):
    return [(h["loss"], h["train_acc"], h["val_acc"], h["test_acc"]) for h in res.history]


def test_zero_one_integer_masks_select_like_bool_ones():
    ei, x, y, masks = _tensors()
    as_bool = beltrami.fit((ei, x, y, masks), **FAST)
    as_int = beltrami.fit((ei, x, y, tuple(m.long() for m in masks)), **FAST)
    assert _trained(as_int) == _trained(as_bool)


@pytest.mark.parametrize("change, error, match", [
    # before: trained on the nodes 0 and 1 only (integer masks were used as indices)
    (lambda ds: dict(train_mask=ds.train_mask.long()), TypeError, r"train_mask must be a bool mask.*pass mask.bool\(\)"),
    # before: NaN losses, and a test accuracy reported
    (lambda ds: dict(train_mask=torch.zeros_like(ds.train_mask)), ValueError, "train_mask selects no node"),
    # before: labels 0.7, 1.7, 2.7 truncated to classes
    (lambda ds: dict(y=ds.y.float() + 0.7), TypeError, "y must hold integer class ids, got dtype torch.float32"),
    (lambda ds: dict(num_classes=2), ValueError, "y holds class 2, out of range for num_classes=2"),
])
def test_dataset_refuses_what_it_would_misuse(small, change, error, match):
    fields = dict(name=small.name, graph=small.graph, x=small.x, y=small.y, train_mask=small.train_mask,
                  val_mask=small.val_mask, test_mask=small.test_mask, num_classes=small.num_classes)
    with pytest.raises(error, match=match):
        Dataset(**{**fields, **change(small)})


@pytest.mark.parametrize("change, match", [
    (dict(y=torch.arange(N) % 3 + 0.7), "y must hold integer class ids, got the value 0.7"),
    (dict(masks=(torch.arange(20), torch.arange(20, 40), torch.arange(40, 60))),
     r"train_mask must be a bool \(or 0/1\) mask of shape \[60\].*m\[ids\] = True"),
    (dict(x=torch.randn(N - 1, 8)), "edge_index refers to node 59, but x has 59 rows"),
])
def test_tensor_input_errors(change, match):
    with pytest.raises(ValueError, match=match):
        beltrami.fit(_tensors(**change), **FAST)


def test_whole_number_float_labels_are_class_ids():
    ei, x, y, masks = _tensors()
    assert _trained(beltrami.fit((ei, x, y.double(), masks), **FAST)) == _trained(beltrami.fit((ei, x, y, masks), **FAST))


def test_output_that_cannot_be_written_fails_before_training(small, tmp_path):
    trained = []
    blocker = tmp_path / "file"
    blocker.write_text("")
    for path, match in [(blocker / "r.json", "cannot be written"), (tmp_path, "is a folder")]:
        with pytest.raises((OSError, ValueError), match=match):
            beltrami.fit(small, **FAST, output=str(path), on_epoch=lambda e, r: trained.append(e))
    assert trained == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probe left nothing behind


def test_divergence_stops_with_the_partial_result(small, tmp_path):
    """lr=1e6: the loss reached 1e13 and fit returned a result as if fine. Now the run stops before the
    bad step is taken; the error's result holds the epochs before (best weights loaded), and is written."""
    path = tmp_path / "r.json"
    with pytest.raises(TrainingDivergedError, match=r"seed 0: the training loss exploded to .* \(it started at "
                                                   r".*\) at epoch 1: training diverged. Try a smaller lr than "
                                                   r"1e\+06") as info:
        beltrami.fit(small, preset="fast", epochs=6, lr=1e6, progress=False, output=str(path))
    part = info.value.result
    assert [len(r.history) for r in part.runs] == [1]
    assert part.runs[0].history[0]["loss"] < 10
    assert FitResult.load(path).test_acc == part.test_acc
    assert part.trained_model is not None


def test_a_failed_training_solve_stops_with_the_partial_result(small, monkeypatch):
    """The time-dependent Cora preset's training solve became non-finite at epoch 9 and the SolverError
    ended fit() with nothing kept; now it stops like a diverging loss, keeping the epochs before."""
    from beltrami.solvers import SolverError

    forward, calls = beltrami.BLEND.forward, iter(range(100))

    def fails_in_the_second_training_solve(self, x, pos=None):
        if self.training and next(calls) == 1:
            raise SolverError("dopri5: non-finite error estimate at t=18.15")
        return forward(self, x, pos)

    monkeypatch.setattr(beltrami.BLEND, "forward", fails_in_the_second_training_solve)
    with pytest.raises(TrainingDivergedError, match=r"seed 0: the training solve failed \(dopri5: non-finite "
                                                   r"error estimate at t=18.15\) at epoch 1: training diverged"
                       ) as info:
        beltrami.fit(small, preset="fast", epochs=4, progress=False)
    assert [len(r.history) for r in info.value.result.runs] == [1]


def test_training_that_works_is_not_stopped(small):
    res = beltrami.fit(small, preset="fast", epochs=6, lr=0.05, progress=False)
    assert len(res.history) == 6


def _checkpointed(small, folder, **kw):
    opts = dict(preset="fast", epochs=3, progress=False, checkpoint_dir=str(folder), checkpoint_every=1,
                resume=True)
    return beltrami.fit(small, **{**opts, **kw})


@pytest.mark.parametrize("change, match", [
    (dict(lr=0.1), r"other options \(lr: 0.01 -> 0.1\)"),
    (dict(hidden=32, dropout=0.5), r"other options \(dropout: 0.2 -> 0.5, hidden: 64 -> 32\)"),
    (dict(epochs=2), "is at epoch 3, past epochs=2"),
])
def test_resume_refuses_a_checkpoint_of_another_run(small, tmp_path, change, match):
    """Before: resuming with another lr or fewer epochs continued the old run, and the result recorded
    the new options."""
    _checkpointed(small, tmp_path)
    with pytest.raises(ValueError, match=f"checkpoint .*run0-seed0.pt .*{match}"):
        _checkpointed(small, tmp_path, **change)


def test_resume_with_more_epochs_continues_the_run(small, tmp_path):
    _checkpointed(small, tmp_path)
    more = _checkpointed(small, tmp_path, epochs=5)
    straight = _checkpointed(small, tmp_path / "other", epochs=5)
    assert [h["loss"] for h in more.history] == [h["loss"] for h in straight.history]


def test_truncated_checkpoint_names_the_file(small, tmp_path):
    """Before: ``OSError: Invalid argument`` without the file."""
    _checkpointed(small, tmp_path)
    ck = tmp_path / "run0-seed0.pt"
    ck.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(ValueError, match=f"checkpoint {ck} cannot be resumed from .*truncated, corrupt"):
        _checkpointed(small, tmp_path)
