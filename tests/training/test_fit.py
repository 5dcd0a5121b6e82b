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


def test_config_errors():
    with pytest.raises(ValueError, match="unknown fit option.*'learning_rate'.*lr"):
        beltrami.fit("cora", learning_rate=0.1)
    with pytest.raises(ValueError, match="unknown model 'sage'"):
        FitConfig.build(model="sage")
    with pytest.raises(ValueError, match=r"dropout must be a finite number in \[0, 1\), got 1.5"):
        FitConfig.build(dropout=1.5)
    with pytest.raises(ValueError, match="unknown ppr_normalization 'sym'"):
        FitConfig.build(ppr_normalization="sym")
    with pytest.raises(ValueError, match="ppr_topk must be >= 1, got 0"):
        FitConfig.build(ppr_topk=0)
    big = beltrami.load_dataset("synthetic", num_nodes=20_001, num_features=4, avg_degree=2, lcc=False)
    with pytest.raises(ValueError, match="ppr_topk=None keeps all 20001 entries.*up to 20,000 nodes"):
        beltrami.fit(big, pos_encoding="ppr", ppr_topk=None, epochs=1, progress=False)
    with pytest.raises(ValueError, match="unknown preset 'best'"):
        beltrami.fit("cora", preset="best")
    with pytest.raises(ValueError, match="has values for"):
        FitConfig.build("synthetic", "paper")
    with pytest.raises(TypeError, match="cannot train on a list"):
        beltrami.fit([1, 2, 3], progress=False)


@pytest.mark.parametrize("kw, error, match", [
    # before each: a TypeError deep in torch or the dataclass, an OverflowError, an UnboundLocalError, an
    # AttributeError of a scripted module, or a run that went ahead (patience=-1, checkpoint_every without a dir)
    (dict(epochs="3"), TypeError, r"epochs must be an int, got '3' \(str\)"),
    (dict(epochs=2.5), TypeError, r"epochs must be an int, got 2.5 \(float\)"),
    (dict(epochs=True), TypeError, "epochs must be an int, got True"),
    (dict(hidden=8.5), TypeError, "hidden must be an int"),
    (dict(lr="0.1"), TypeError, r"lr must be a number, got '0.1' \(str\)"),
    (dict(lr=float("nan")), ValueError, r"lr must be a finite number in \(0, inf\), got nan"),
    (dict(time=float("inf")), ValueError, "time must be a finite number"),
    (dict(dropout="0.5"), TypeError, "dropout must be a number"),
    (dict(patience=-1), ValueError, "patience must be >= 1, got -1"),
    (dict(patience=0), ValueError, "patience must be >= 1, got 0"),
    (dict(seeds=[]), ValueError, r"seeds=\[\] names no run"),
    (dict(seeds=[0, 1.5]), TypeError, "each of seeds must be an int"),
    (dict(seeds="01"), TypeError, "seeds must be a list of ints"),
    (dict(self_loops="yes"), TypeError, "self_loops must be True or False"),
    (dict(device="gpu"), ValueError, "device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (dict(scheme="rk5"), ValueError, "unknown scheme 'rk5'"),
    (dict(scheme="rk4"), ValueError, "scheme rk4 needs step_size"),
    (dict(scheme="rk4", step_size=float("nan")), ValueError, "step_size must be a finite number"),
    (dict(rtol=-1.0), ValueError, r"rtol must be a finite number in \[0, inf\)"),
    (dict(scheme="implicit_euler", step_size=1.0, compile="script"), ValueError,
     "compile='script' applies to explicit and adaptive schemes"),
    (dict(checkpoint_every=1), ValueError, "checkpoint_every=1 needs checkpoint_dir"),
    (dict(resume=True), ValueError, "resume=True needs checkpoint_dir"),
    (dict(checkpoint_dir="ck"), ValueError, "with checkpoint_every=0 writes no checkpoint"),
    (dict(attention_kind="dot"), ValueError, "unknown attention_kind 'dot'"),
])
def test_bad_options_are_refused_before_any_work(kw, error, match):
    with pytest.raises(error, match=match):
        FitConfig.build(**kw)


def test_cuda_device_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="device='cuda', but PyTorch sees no CUDA device"):
        FitConfig.build(device="cuda")


def test_paper_presets_follow_best_params():
    cfg = FitConfig.build("cora", "paper")
    # the official code's values at full precision (not rounded to four digits)
    assert (cfg.solver.time, cfg.solver.scheme, cfg.model.heads, cfg.model.attention_dim, cfg.train.optimizer) == (
        18.294754260552843, "dopri5", 8, 128, "adamax")
    assert cfg.train.lr == 0.022924849756740397
    assert abs(cfg.solver.atol - 821.9773048827274e-7) < 1e-15 and abs(cfg.solver.rtol - 821.9773048827274e-9) < 1e-15
    m = cfg.model
    assert m.frozen and m.detach_source  # the official set_x0 detaches the source's z(0)
    assert m.hidden + m.pos_dim == 80 and m.normalisation == "squareplus" and m.add_source
    assert m.normalise_over == "cols" and m.pos_dropout is None  # official orientation; input dropout on both
    assert (cfg.encoding.ppr_normalization, cfg.encoding.ppr_topk, cfg.train.select_time) == ("sym-col", None, 3.0)
    assert not FitConfig.build("citeseer", "paper-beltrami").model.frozen
    arxiv = FitConfig.build("synthetic-arxiv", "paper").flat()  # the arxiv-sized stand-in takes ogbn-arxiv's values
    assert (round(arxiv["time"], 3), arxiv["heads"], arxiv["pos_encoding"], arxiv["deepwalk_dim"]) == (
        3.676, 2, "deepwalk", 64)
    assert (arxiv["backprop"], arxiv["adjoint_scheme"], arxiv["adjoint_step_size"]) == ("adjoint", "rk4", 1.0)
    # official attention_norm_idx: 0 (rows) on ogbn-arxiv; CiteSeer's Beltrami exp kernel is the product form
    assert arxiv["normalise_over"] == "rows"
    assert FitConfig.build("citeseer", "paper").model.attention_kind == "exp_product"


def test_paper_preset_for_baselines_is_their_own_papers_settings():
    gcn = FitConfig.build("citeseer", "paper", model="gcn").flat()
    assert [gcn[k] for k in ("hidden", "dropout", "lr", "weight_decay", "epochs")] == [16, 0.5, 0.01, 5e-4, 200]
    gat = FitConfig.build("cora", "paper", model="gat", epochs=5).flat()  # keyword options still override
    assert [gat[k] for k in ("dropout", "lr", "epochs", "pos_encoding")] == [0.6, 0.005, 5, None]
    assert gcn["feature_norm"] == gat["feature_norm"] == "row"
    assert FitConfig.build("cora", "paper").data.feature_norm is None


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


def test_dynamic_rewiring_rebuilds_the_graph(small, monkeypatch):
    import sys

    fit_module = sys.modules["beltrami.training.fit"]  # the name beltrami.training.fit is the function
    original = fit_module.dynamic_rewire
    graphs = []

    def recording(cfg, model, x, pos):
        before = model.function.col.clone()
        original(cfg, model, x, pos)
        graphs.append((before, model.function.col.clone()))

    monkeypatch.setattr(fit_module, "dynamic_rewire", recording)
    beltrami.fit(small, model="blend-knn", rewire_on="feat", rewire_k=4, rewire_every=2, epochs=5, preset="fast",
                 progress=False)
    assert len(graphs) == 2  # before the 2nd and the 4th epoch
    before, after = graphs[0]
    assert before.numel() != after.numel() or not torch.equal(before, after)  # learned coordinates, new graph


def test_official_knn_rewiring_is_each_nodes_k_nearest_in_z0(small, monkeypatch):
    """The official runner's kNN rewiring (the paper preset of blend-knn): the input graph first, then each
    node linked to its k nearest nodes in the encoder's output by Euclidean distance, one direction, itself
    among them; checked against dense float64 distances."""
    import sys

    fit_module = sys.modules["beltrami.training.fit"]
    original, seen = fit_module.dynamic_rewire, []

    def recording(cfg, model, x, pos):
        seen.append((model.function.row.clone(), model.function.col.clone()))
        original(cfg, model, x, pos)
        with torch.no_grad():
            model.eval()
            z0 = model.encode(x, pos).double()
        d = torch.cdist(z0, z0)
        d.fill_diagonal_(float("inf"))
        k = 5
        ref = torch.cat([d.topk(k, dim=1, largest=False).indices, torch.arange(len(z0))[:, None]], dim=1)
        ours = [set() for _ in range(len(z0))]
        for r, c in zip(model.function.row.tolist(), model.function.col.tolist()):
            ours[r].add(c)
        assert ours == [set(row) for row in ref.tolist()]

    monkeypatch.setattr(fit_module, "dynamic_rewire", recording)
    beltrami.fit(small, preset="fast", model="blend-knn", pos_encoding="ppr", ppr_topk=None, rewire=None,
                 rewire_every=3, rewire_on="both", rewire_metric="euclidean", rewire_symmetric=False, rewire_k=5,
                 self_loops=True, epochs=4, progress=False)
    assert len(seen) == 1  # before the 3rd epoch, on the input graph until then
    row, col = seen[0]
    assert torch.equal(torch.stack([row, col]), small.graph.add_self_loops().edge_index)


def test_the_paper_preset_of_blend_knn_is_the_official_gdc_rewiring():
    for dataset, k in (("cora", 64), ("citeseer", 128)):  # the official gdc_k
        cfg = FitConfig.build(dataset, "paper", model="blend-knn")
        enc = cfg.encoding
        assert (enc.rewire, enc.rewire_k, enc.rewire_symmetric, enc.rewire_every) == ("ppr", k, False, 0)
        assert enc.ppr_normalization == "sym-col" and cfg.data.self_loops
    assert FitConfig.build("cora", "fast", model="blend-knn").encoding.rewire == "knn"


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
