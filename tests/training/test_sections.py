"""The grouped configuration: flat names route to their sections, sections may be given whole, recorded configs
(grouped, or flat from older results) read back, and the sections build the objects they are named for."""
import dataclasses
import json
from pathlib import Path

import pytest

import beltrami
from beltrami.training import FitConfig
from beltrami.training.config import OFFICIAL, PAPER
from beltrami.training.sections import ROUTES, SECTIONS, AdjointConfig, flat_config, route

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def test_every_field_has_exactly_one_flat_name():
    fields = [(s, f.name) for s, cls in SECTIONS.items() for f in dataclasses.fields(cls) if f.name != "adjoint"]
    fields += [("solver", "adjoint", f.name) for f in dataclasses.fields(AdjointConfig)]
    assert sorted(ROUTES.values()) == sorted(fields) and len(set(ROUTES.values())) == len(ROUTES)
    assert ROUTES["model"] == ("model", "kind") and ROUTES["adjoint_step_size"] == ("solver", "adjoint", "step_size")


def test_flat_names_and_sections_build_the_same_config():
    flat = FitConfig.build("cora", "paper", lr=0.1, heads=2, adjoint_scheme="rk4", backprop="adjoint",
                           adjoint_step_size=0.5, model="blend")
    grouped = FitConfig.build("cora", "paper", train={"lr": 0.1}, model={"heads": 2, "kind": "blend"},
                              solver={"backprop": "adjoint", "adjoint": {"scheme": "rk4", "step_size": 0.5}})
    assert flat == grouped
    assert (flat.train.lr, flat.model.heads, flat.solver.adjoint.scheme) == (0.1, 2, "rk4")
    assert flat.solver.time == PAPER["cora"]["time"] == OFFICIAL["cora"]["time"]  # the preset's, untouched
    # a preset's adjoint tolerances stay when the caller names only the adjoint scheme
    pubmed = FitConfig.build("pubmed", "paper", solver={"adjoint": {"scheme": "dopri5"}})
    assert pubmed.solver.adjoint.rtol == PAPER["pubmed"]["adjoint_rtol"]


def test_recorded_configs_read_back(tmp_path):
    cfg = FitConfig.build("cora", "paper", lr=0.1, seeds=[3, 4])
    assert FitConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert flat_config(cfg.to_dict()) == cfg.flat() and cfg.flat()["lr"] == 0.1 and cfg.flat()["model"] == "blend"
    # a result written before the sections: its flat config gives the same options
    old = json.loads((RESULTS / "table2-cora-blend-paper-runner.json").read_text())["config"]
    assert "train" not in old and FitConfig.from_dict(old).flat() == {**FitConfig().flat(), **old}


@pytest.mark.parametrize("given, match", [
    (dict(learning_rate=0.1), r"unknown fit option 'learning_rate'; valid: the sections data, encoding.*'?lr"),
    (dict(train={"learning_rate": 0.1}), r"unknown option 'learning_rate' in section 'train'; valid: optimizer, lr"),
    (dict(solver={"adjoint": {"tol": 1}}), r"unknown option 'tol' in section 'adjoint'; valid: scheme, rtol"),
    (dict(lr=0.1, train={"lr": 0.2}), r"train.lr is given twice: as 'lr' and as 'train.lr'"),
    (dict(model="grand-l", pos_encoding="ppr"), r"grand-l.*pos_encoding must be None, got 'ppr'"),
    (dict(model="blend-knn", rewire=None),
     r"blend-knn.*rewire must be 'knn' or 'ppr', or rewire_every > 0.*got rewire=None"),
    (dict(attention_kind="exp_product"), r"exp_product.*needs pos_encoding, got None.*'exp_kernel'"),
])
def test_unknown_twice_and_contradictory_options_are_refused(given, match):
    with pytest.raises(ValueError, match=match):
        FitConfig.build(**given)


def test_model_kinds_take_their_defaults_without_overwriting_a_choice():
    assert FitConfig.build("cora", "paper", model="grand-l").encoding.pos_encoding is None
    assert FitConfig.build(model="blend-knn").encoding.rewire == "knn"
    assert FitConfig.build(model="blend-knn", rewire="ppr").encoding.rewire == "ppr"


def test_sections_build_blend(small):
    cfg = FitConfig.build(None, "fast", heads=2, hidden=8, pos_dim=4, kinetic=0.1, adjoint_scheme="rk4")
    model = beltrami.BLEND(small.num_features, small.num_classes, small.graph, pos_channels=3,
                           **cfg.model.blend_arguments(), **cfg.solver.blend_arguments())
    assert (model.hidden_features, model.hidden_pos, model.scheme, model.step_size) == (8, 4, "rk4", 1.0)
    assert model.regularization.kinetic == 0.1 and model.solver_options["adjoint_scheme"] == "rk4"
    assert route({"lr": 1e-3})["train"] == {"lr": 1e-3}
