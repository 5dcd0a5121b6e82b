import json

import pytest

from beltrami.sweep import Choice, LogUniform, Uniform, sweep
from beltrami.sweep.space import PAPER_SPACE, to_fit_options, validate_space

SMALL = {"lr": LogUniform(1e-3, 1e-1), "heads": Choice((1, 2)), "dropout": Uniform(0.0, 0.3)}
BASE = dict(epochs=2, time=1.0)


def _check_output(out, summary, trials):
    assert len(summary["trials"]) == trials
    files = sorted(p.name for p in out.glob("trial-*.json"))
    assert len(files) == trials
    on_disk = json.loads((out / "sweep.json").read_text())
    assert on_disk["best"]["val_acc"] == max(r["val_acc"] for r in on_disk["trials"])
    trial = json.loads((out / files[0]).read_text())  # a FitResult JSON
    assert {"test_acc", "val_acc", "config", "versions"} <= set(trial)
    assert trial["config"]["run"]["extras"]["sweep_params"].keys() == SMALL.keys()


def test_optuna_sweep_writes_every_trial(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "sweep"
    summary = sweep("cora", trials=3, engine="optuna", space=SMALL, preset="fast", output=str(out), **BASE)
    _check_output(out, summary, 3)
    # the sampled values are those the trials trained with
    for row in summary["trials"]:
        cfg = json.loads(open(row["path"]).read())["config"]
        assert cfg["train"]["lr"] == pytest.approx(row["params"]["lr"])
        assert cfg["model"]["heads"] == row["params"]["heads"]


@pytest.mark.slow
def test_ray_sweep_writes_every_trial(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    summary = sweep("cora", trials=2, engine="ray", space=SMALL, preset="fast", output=str(out), **BASE)
    _check_output(out, summary, 2)


def test_tol_scale_expands_to_tolerances():
    opts = to_fit_options({"tol_scale": 100.0, "lr": 0.1})
    assert opts == {"lr": 0.1, "atol": pytest.approx(1e-5), "rtol": pytest.approx(1e-7)}


def test_paper_space_is_valid():
    validate_space(PAPER_SPACE)


@pytest.mark.parametrize("space, match", [
    ({"learning_rate": Uniform(0, 1)}, "unknown search-space key"),
    ({"lr": Uniform(1, 1)}, "bad bounds"),
    ({"lr": LogUniform(0, 1)}, "bad bounds"),
    ({"heads": Choice(())}, "at least one option"),
    ({"lr": (0.1, 0.2)}, "expected Uniform"),
])
def test_bad_space(space, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        sweep("cora", trials=1, engine="optuna", space=space, output=str(tmp_path))


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="sweep engine"):
        sweep("cora", engine="hyperopt", output=str(tmp_path))
    with pytest.raises(ValueError, match="trials"):
        sweep("cora", trials=0, engine="optuna", output=str(tmp_path))
    with pytest.raises(ValueError, match="both searched and fixed"):
        sweep("cora", engine="optuna", space=SMALL, lr=0.1, output=str(tmp_path))


def test_space_around_keeps_each_value_inside_its_range():
    from beltrami.sweep.space import space_around
    from beltrami.training.config import preset_values

    values = preset_values("paper", "citeseer")
    space = space_around(values, factor=2.0, band=0.15)
    validate_space(space)
    assert set(space) == {"lr", "weight_decay", "time", "dropout", "input_dropout"}
    assert space["lr"] == LogUniform(values["lr"] / 2, values["lr"] * 2)
    assert space["time"].low < values["time"] < space["time"].high
    assert space["dropout"] == Uniform(values["dropout"] - 0.15, min(0.95, values["dropout"] + 0.15))
    assert space_around({"dropout": 0.05, "lr": None}) == {"dropout": Uniform(0.0, 0.2)}  # clipped; None left out
    with pytest.raises(ValueError, match="factor"):
        space_around(values, factor=1.0)
    with pytest.raises(ValueError, match="band"):
        space_around(values, band=0.0)
