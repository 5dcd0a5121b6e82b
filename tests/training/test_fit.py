import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

import beltrami
from beltrami.solvers import SCHEMES
from beltrami.training import FitConfig, FitResult
from beltrami.training.data import normalise_features


def _mlp_accuracy(ds, epochs=200, seed=0):
    """A feature-only 2-layer MLP trained with the same protocol (best validation epoch)."""
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(ds.num_features, 64), torch.nn.ReLU(),
                              torch.nn.Dropout(0.5), torch.nn.Linear(64, ds.num_classes))
    opt = torch.optim.Adam(mlp.parameters(), lr=0.01, weight_decay=5e-4)
    best = (0.0, 0.0)
    for _ in range(epochs):
        mlp.train()
        opt.zero_grad()
        F.cross_entropy(mlp(ds.x)[ds.train_mask], ds.y[ds.train_mask]).backward()
        opt.step()
        mlp.eval()
        with torch.no_grad():
            pred = mlp(ds.x).argmax(1)
        va = float((pred[ds.val_mask] == ds.y[ds.val_mask]).float().mean())
        te = float((pred[ds.test_mask] == ds.y[ds.test_mask]).float().mean())
        best = max(best, (va, te))
    return best[1]


def test_fast_preset_on_cora_beats_a_feature_only_mlp():
    """BLEND diffuses over the graph: on Cora's public split that is worth >= 10 points over an MLP on
    the features alone (an MLP gets ~57%, graph models ~80%)."""
    ds = beltrami.load_dataset("cora")
    mlp = _mlp_accuracy(ds)
    res = beltrami.fit("cora", preset="fast", progress=False)
    assert res.test_acc >= mlp + 0.10, (res.test_acc, mlp)
    assert res.nfe_forward == 12 and res.nfe_backward == 12  # rk4, T=3, h=1: 3 steps x 4 stages
    assert res.num_parameters > 0 and res.seconds_per_epoch > 0 and len(res.history) == 60


KW = {"euler": dict(step_size=0.5), "rk4": dict(step_size=0.5), "dopri5": dict(rtol=1e-3, atol=1e-4),
      "bosh3": dict(rtol=1e-3, atol=1e-4), "implicit_euler": dict(step_size=0.5),
      "crank_nicolson": dict(step_size=0.5)}


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("backprop", ["direct", "adjoint"])
def test_every_scheme_and_backprop_trains(small, scheme, backprop):
    res = beltrami.fit(small, epochs=3, time=1.0, scheme=scheme, backprop=backprop, progress=False,
                       heads=2, attention_dim=8, hidden=16, **KW[scheme])
    assert len(res.history) == 3 and all(torch.isfinite(torch.tensor(h["loss"])) for h in res.history)
    assert res.history[0]["nfe_forward"] > 0 and res.history[0]["nfe_backward"] > 0


def test_select_time_reads_the_best_validation_time(small):
    """Evaluation does not change training, so with T on the evaluation grid the selected validation
    accuracy is never below the one at T, epoch by epoch; the selected time lies in (0, 3T]."""
    kw = dict(epochs=4, time=1.0, scheme="dopri5", rtol=1e-3, atol=1e-4, progress=False, hidden=16,
              attention_dim=8, heads=2)
    plain = beltrami.fit(small, **kw)
    picked = beltrami.fit(small, select_time=3.0, select_time_points=12, **kw)
    for a, b in zip(plain.history, picked.history):
        assert a["loss"] == b["loss"] and b["val_acc"] >= a["val_acc"] and 0.0 < b["time"] <= 3.0 + 1e-9
    assert plain.history[0]["time"] == 1.0 and picked.runs[0].best_time == picked.history[picked.runs[0].best_epoch]["time"]
    with pytest.raises(ValueError, match=r"select_time must be a finite number in \[0, inf\), got -1.0"):
        FitConfig.build(select_time=-1.0)


def test_select_time_falls_back_to_T_when_the_longer_solve_fails(small, monkeypatch):
    """Past the trained horizon the dynamics can stiffen (the time-dependent preset underflowed at 3T on
    Cora): evaluation then reads the model at T, with a warning, instead of ending the run."""
    from beltrami.solvers import SolverError

    def stiff(self, x, pos, times):
        raise SolverError("dopri5: step-size underflow at t=2.9")

    monkeypatch.setattr(beltrami.BLEND, "forward_times", stiff)
    with pytest.warns(UserWarning, match="time selection up to 3 failed"):
        res = beltrami.fit(small, epochs=2, time=1.0, select_time=3.0, select_time_points=6, progress=False,
                           scheme="rk4", step_size=0.5, hidden=16, attention_dim=8, heads=2)
    assert [h["time"] for h in res.history] == [1.0, 1.0] and res.runs[0].best_time == 1.0


def test_commit_is_taken_when_the_run_starts(small, monkeypatch):
    """A long run records the code it imported, not the checkout's HEAD when it ends."""
    fit_module = sys.modules["beltrami.training.fit"]  # the module (the package re-exports fit())
    heads = iter(["at-start", "at-end"])
    monkeypatch.setattr(fit_module, "git_commit", lambda: next(heads))
    res = beltrami.fit(small, preset="fast", epochs=1, progress=False)
    assert res.commit == "at-start"


def test_git_commit_names_this_checkout_as_imported(monkeypatch):
    from beltrami.training import result

    commit = result.git_commit()
    if commit is None:
        pytest.skip("not a git checkout")
    assert len(commit.removesuffix("-dirty")) == 40
    assert commit.removesuffix("-dirty") == result._read_git_commit().removesuffix("-dirty")
    # the checkout moving on later does not change what this process reports: it runs the imported code
    monkeypatch.setattr(result, "_read_git_commit", lambda: "moved-on")
    assert result.git_commit() == commit


@pytest.mark.parametrize("model", ["gcn", "gat", "grand-l", "blend-knn"])
def test_other_models_train(small, model):
    res = beltrami.fit(small, model=model, epochs=5, scheme="rk4", step_size=1.0, progress=False, rewire_k=5,
                       hidden=16, attention_dim=8)
    assert 0.0 <= res.test_acc <= 1.0 and res.model == model


def test_runs_give_mean_and_std(small):
    res = beltrami.fit(small, preset="fast", epochs=5, runs=3, progress=False)
    assert len(res.runs) == 3 and [r.seed for r in res.runs] == [0, 1, 2]
    accs = torch.tensor([r.test_acc for r in res.runs], dtype=torch.float64)
    assert abs(res.test_acc - float(accs.mean())) < 1e-9 and abs(res.test_acc_std - float(accs.std())) < 1e-9


def test_deterministic_for_a_seed(small):
    a = beltrami.fit(small, preset="fast", epochs=4, progress=False)
    b = beltrami.fit(small, preset="fast", epochs=4, progress=False)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


def test_result_json_roundtrip(small, tmp_path):
    res = beltrami.fit(small, preset="fast", epochs=2, progress=False, output=str(tmp_path / "r.json"))
    back = FitResult.load(tmp_path / "r.json")
    assert back == res
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["config"]["solver"]["scheme"] == "rk4" and "torch" in d["versions"] and "trained_model" not in d


def test_output_keeps_the_seeds_finished_before_a_stop(small, tmp_path):
    path = tmp_path / "r.json"

    def stop_in_second_seed(epoch, record):
        if path.exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        beltrami.fit(small, preset="fast", epochs=2, seeds=[3, 4], progress=False, output=str(path),
                     on_epoch=stop_in_second_seed)
    part = FitResult.load(path)
    assert [r.seed for r in part.runs] == [3]
    assert part.test_acc == part.runs[0].test_acc


def test_merge_of_two_sittings_equals_one_run(small):
    kw = dict(preset="fast", epochs=2, progress=False)
    whole = beltrami.fit(small, seeds=[0, 1], **kw)
    parts = [beltrami.fit(small, seeds=[1], **kw), beltrami.fit(small, seeds=[0], **kw)]
    merged = FitResult.merge(parts)
    assert [r.seed for r in merged.runs] == [0, 1]
    assert [[h["loss"] for h in r.history] for r in merged.runs] == [[h["loss"] for h in r.history] for r in whole.runs]
    assert merged.test_acc == whole.test_acc and merged.config["run"]["seeds"] == [0, 1]
    assert [m["seeds"] for m in merged.config["run"]["extras"]["merged_from"]] == [[1], [0]]
    again = FitResult.merge([merged, beltrami.fit(small, seeds=[3], **kw)])  # a merged row keeps every sitting
    assert [m["seeds"] for m in again.config["run"]["extras"]["merged_from"]] == [[1], [0], [3]]
    with pytest.raises(ValueError, match="share seeds"):
        FitResult.merge([parts[0], parts[0]])
    other = beltrami.fit(small, seeds=[2], lr=0.05, **kw)
    with pytest.raises(ValueError, match="configs differ in lr"):
        FitResult.merge([parts[0], other])


def test_extras_add_to_the_presets(small):
    cfg = FitConfig.build("cora", "paper", extras={"table": 2})
    assert cfg.run.extras == {"paper_hidden_dim": FitConfig.build("cora", "paper").run.extras["paper_hidden_dim"],
                          "table": 2}


def test_tensor_and_pyg_like_inputs(small):
    masks = (small.train_mask, small.val_mask, small.test_mask)
    res = beltrami.fit((small.graph.edge_index, small.x, small.y, masks), preset="fast", epochs=2, progress=False)
    assert res.dataset == "tensors"

    class Data:  # duck-typed torch_geometric.data.Data
        x, y, edge_index = small.x, small.y, small.graph.edge_index.flip(0)
        train_mask, val_mask, test_mask = masks
        num_nodes = small.num_nodes

    res = beltrami.fit(Data(), preset="fast", epochs=2, progress=False)
    assert res.dataset == "pyg"


def test_row_feature_norm_reaches_the_model(small):
    x = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]])
    torch.testing.assert_close(normalise_features(x, "row"), torch.tensor([[0.25, 0.75, 0], [0, 0, 0], [0.25, 0.25, 0.5]]))
    assert normalise_features(x, None) is x
    with pytest.raises(ValueError, match="unknown feature_norm 'l2'"):
        FitConfig.build(feature_norm="l2")
    # the synthetic features' rows do not sum to 1: with the option on, training sees other inputs
    runs = [beltrami.fit(small, model="gcn", epochs=2, progress=False, feature_norm=norm).history[0]["loss"]
            for norm in (None, "row")]
    assert runs[0] != runs[1]


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path):
    script = textwrap.dedent("""
        import os, sys, beltrami
        ds = beltrami.load_dataset("synthetic", num_nodes=300, num_classes=3, num_features=8, avg_degree=6, seed=1)
        kill = sys.argv[1] == "kill"
        def stop(epoch, record):
            if kill and epoch == 4:
                os._exit(3)  # dies mid-training, after the checkpoint of epoch 4
        res = beltrami.fit(ds, preset="fast", epochs=8, dropout=0.3, checkpoint_dir=sys.argv[2], checkpoint_every=1,
                           resume=True, progress=False, on_epoch=stop)
        print(repr([h["loss"] for h in res.history]), res.test_acc)
    """)
    # folder names of one length, so that the runs allocate alike: with "ck" against "other", one full-suite
    # run differed in the 7th digit of an epoch's loss (likely SIMD sums rounding by alignment)
    ck = str(tmp_path / "run-a")
    killed = subprocess.run([sys.executable, "-c", script, "kill", ck], capture_output=True, text=True)
    assert killed.returncode == 3
    resumed = subprocess.run([sys.executable, "-c", script, "go", ck], capture_output=True, text=True, check=True)
    straight = subprocess.run([sys.executable, "-c", script, "go", str(tmp_path / "run-b")], capture_output=True,
                              text=True, check=True)
    assert resumed.stdout == straight.stdout


def test_export_predicts_identically_without_beltrami(tmp_path):
    from beltrami.models.export import export_torchscript

    res = beltrami.fit("cora", preset="fast", epochs=2, pos_encoding="ppr", progress=False)
    model = res.trained_model.eval()
    ds = beltrami.load_dataset("cora")
    with torch.no_grad():
        ref = model(ds.x, res.pos)
    export_torchscript(model, tmp_path / "blend.pt", res.pos)
    torch.save(ds.x, tmp_path / "x.pt")
    code = textwrap.dedent(f"""
        import importlib.util, sys, torch
        spec = importlib.util.spec_from_file_location("ops", {str(beltrami.__path__[0] + "/sparse/ops.py")!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        out = torch.jit.load({str(tmp_path / "blend.pt")!r})(torch.load({str(tmp_path / "x.pt")!r}))
        torch.save(out.detach(), {str(tmp_path / "out.pt")!r})
        print(any(k == "beltrami" or k.startswith("beltrami.") for k in sys.modules))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"  # no beltrami module was imported
    out = torch.load(tmp_path / "out.pt")
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(out.argmax(1), ref.argmax(1))
    with pytest.raises(ValueError, match="only fixed-step explicit schemes"):
        export_torchscript(beltrami.BLEND(4, 2, ds.graph, scheme="dopri5"), tmp_path / "no.pt")


def test_import_runs_no_subprocess_and_the_commit_is_read_once():
    """``import beltrami`` ran ``git`` twice; the commit is now read at the first fit and kept."""
    code = ("import subprocess\n"
            "def refuse(*a, **k): raise AssertionError(f'subprocess at import: {a}')\n"
            "real = subprocess.run, subprocess.Popen\n"
            "subprocess.run, subprocess.Popen = refuse, refuse\n"
            "import beltrami, beltrami.training, beltrami.bench.cli\n"
            "subprocess.run, subprocess.Popen = real\n"
            "from beltrami.training.result import git_commit\n"
            "first = git_commit(); subprocess.run, subprocess.Popen = refuse, refuse\n"
            "assert git_commit() == first; print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("failing", [0, 1])
def test_an_evaluation_that_fails_at_T_leaves_the_epoch_unscored(small, monkeypatch, failing):
    """Without dropout the time-dependent Cora preset blew up before T where training had not: that epoch
    has no prediction, so it is NaN in the history, never the best (a scored epoch replaces an unscored
    first one), and the run goes on."""
    from beltrami.solvers import SolverError

    forward = beltrami.BLEND.forward
    evaluations = iter(range(100))

    def blows_up_in_one_evaluation(self, x, pos=None):
        if not self.training and next(evaluations) == failing:
            raise SolverError("dopri5: non-finite error estimate at t=0.9")
        return forward(self, x, pos)

    monkeypatch.setattr(beltrami.BLEND, "forward", blows_up_in_one_evaluation)
    with pytest.warns(UserWarning, match="evaluation failed .* not scored"):
        res = beltrami.fit(small, epochs=3, time=1.0, progress=False, scheme="rk4", step_size=0.5, hidden=16,
                           attention_dim=8, heads=2)
    unscored = res.history[failing]
    assert math.isnan(unscored["val_acc"]) and math.isnan(unscored["test_acc"]) and unscored["time"] is None
    assert res.runs[0].best_epoch != failing and not math.isnan(res.test_acc)
    assert [h["epoch"] for h in res.history] == [0, 1, 2]
