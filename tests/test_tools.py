"""The scripts in tools/ on tiny inputs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def test_fetch_data_check_mode(shared_data):
    out = subprocess.run([sys.executable, str(TOOLS / "fetch_data.py"), "--root", str(shared_data), "--check"],
                         capture_output=True, text=True, check=True).stdout
    assert "planetoid/ind.cora.x" in out and "verified" in out and "missing" in out


def test_scaling_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    scaling = tmp_path / "s.json"
    subprocess.run([sys.executable, str(TOOLS / "scaling.py"), "--sizes", "300,10000,20000", "--dim", "8",
                    "--output", str(scaling)], capture_output=True, text=True, check=True)
    data = json.loads(scaling.read_text())
    assert len(data["rows"]) == 3 and "time_slope" in data and data["commit"] is not None
    bench = tmp_path / "b.json"
    bench.write_text(json.dumps({"rows": [{"dataset": "d", "scheme": "rk4", "backprop": "direct", "nfe_forward": 12,
                                           "test_acc": 0.8, "seconds_per_epoch": 0.1, "error": ""}]}))
    out = subprocess.run([sys.executable, str(TOOLS / "plot_results.py"), "--bench", str(bench), "--scaling",
                          str(scaling), "--out", str(tmp_path / "plots")], capture_output=True, text=True, check=True)
    assert {Path(p).name for p in out.stdout.split()} == {"accuracy_vs_nfe.png", "seconds_per_epoch.png", "scaling.png"}


def test_reproduce_writes_markdown_from_results(tmp_path):
    import beltrami

    res = beltrami.fit("cora", preset="fast", epochs=1, progress=False)
    res.config["run"]["extras"] = {"table": 2, "command": "the command"}
    res.save(tmp_path / "table2-cora-blend-fast.json")
    res.config["data"]["split"] = "runner"  # the official code's own runs on the runner's splits stand beside it
    res.save(tmp_path / "table2-cora-blend-fast-runner.json")
    res.model, res.config["data"]["split"] = "blend-knn", None  # a BLEND-kNN row on a symmetric graph
    res.save(tmp_path / "table2-cora-blend-knn-fast.json")
    # runs recorded without a split ran the runner's splits; each split's runs stand beside its own rows
    official = [{"dataset": "cora", "program": "official", "test_acc": a} for a in (0.83, 0.85)]
    official += [{"dataset": "cora", "split": "public", "program": "official", "test_acc": a} for a in (0.80, 0.82)]
    # another model's official runs stand beside that model's rows only
    official += [{"dataset": "cora", "split": "public", "model": "blend-knn", "program": "official", "test_acc": 0.5}]
    (tmp_path / "official-code-cora.json").write_text(json.dumps({"meta": {}, "runs": official}))
    (tmp_path / "gpu").mkdir()
    row = {"model": "blend-knn", "scheme": "dopri5", "backprop": "adjoint", "compile": "eager",
           "seconds_per_epoch": 0.474, "seconds_per_epoch_median": 0.466, "peak_memory_MB": 16797.0,
           "nfe_forward": 27.2, "nfe_backward": 16.0, "num_parameters": 31585, "error": ""}
    bench = {"meta": {"args": {"device": "cuda"}, "versions": {"torch": "2.11"},
                      "argv": ["--dataset", "synthetic-arxiv", "--output", "/abs/out.json"]},
             "rows": [row, {**row, "model": "blend", "error": "OOM"}]}
    (tmp_path / "gpu" / "arxiv-blend-cuda.json").write_text(json.dumps(bench))
    md = tmp_path / "results.md"
    subprocess.run([sys.executable, str(TOOLS / "reproduce.py"), "--from-json", str(tmp_path / "table2-cora-blend-fast.json"),
                    str(tmp_path / "table2-cora-blend-fast-runner.json"),
                    str(tmp_path / "table2-cora-blend-knn-fast.json"), "--markdown", str(md), "--results-dir",
                    str(tmp_path)], capture_output=True, text=True, check=True)
    text = md.read_text()
    assert "| cora | blend (frozen, rk4 step 1) |" in text and "84.2 ± 0.6" in text and "`the command`" in text
    public = [line for line in text.splitlines() if line.startswith("| cora | blend (frozen, rk4 step 1) |")]
    runner = [line for line in text.splitlines() if line.startswith("| cora | blend (frozen, runner split, rk4 step 1) |")]
    assert "| 84.2 ± 0.6 | 81.0 ± 1.4 (2) |" in public[0] and "| 84.2 ± 0.6 | 84.0 ± 1.4 (2) |" in runner[0]
    knn = [line for line in text.splitlines() if line.startswith("| cora | blend-knn (frozen, symmetric graph, rk4")]
    assert "| 83.1 ± 0.8 | 50.0 ± 0.0 (1) |" in knn[0]
    assert "(no runs yet)" in text  # table 3 is empty
    scale = [line for line in text.splitlines() if line.startswith("| blend")]
    assert scale == ["| blend-knn | dopri5 | adjoint | eager | cuda, torch 2.11 | 0.474 | 0.466 | 16797 | 27/16 | "
                     "31585 | gpu/arxiv-blend-cuda.json | "
                     "`beltrami-bench --dataset synthetic-arxiv --output out.json` |"]
    # --from-json without files is a mistake, not a request for empty tables
    bad = subprocess.run([sys.executable, str(TOOLS / "reproduce.py"), "--from-json", "--markdown", str(md),
                          "--results-dir", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "--from-json needs the result files" in bad.stderr
    assert md.read_text() == text


def test_reproduce_runs_a_row_and_leaves_no_partial_file(tmp_path):
    md = tmp_path / "results.md"
    # other measurements share the folder: the markdown must not read them as rows (it crashed on them)
    (tmp_path / "official-vs-beltrami.json").write_text('{"meta": {}, "runs": [{"dataset": "cora"}]}')
    subprocess.run([sys.executable, str(TOOLS / "reproduce.py"), "--table", "2", "--datasets", "cora", "--models", "gcn",
                    "--preset", "fast", "--seeds", "2", "--results-dir", str(tmp_path), "--markdown", str(md)],
                   capture_output=True, text=True, check=True, timeout=600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["official-vs-beltrami.json", "results.md",
                                                         "table2-cora-gcn-fast.json"]
    res = json.loads((tmp_path / "table2-cora-gcn-fast.json").read_text())
    assert [r["seed"] for r in res["runs"]] == [0, 1] and res["config"]["run"]["extras"]["table"] == 2
    assert "--seeds 2" in res["config"]["run"]["extras"]["command"] and "| cora | gcn |" in md.read_text()


def test_reproduce_runs_table2_on_the_official_fixed_split(tmp_path):
    md = tmp_path / "results.md"
    subprocess.run([sys.executable, str(TOOLS / "reproduce.py"), "--table", "2", "--split", "fixed", "--datasets",
                    "cora", "--models", "gcn", "--preset", "fast", "--seeds", "1", "--results-dir", str(tmp_path),
                    "--markdown", str(md)], capture_output=True, text=True, check=True, timeout=600)
    res = json.loads((tmp_path / "table2-cora-gcn-fast-fixed.json").read_text())
    assert res["config"]["data"]["split"] == "fixed" and "--split fixed" in res["config"]["run"]["extras"]["command"]
    assert "| cora | gcn (fixed split) |" in md.read_text()
    bad = subprocess.run([sys.executable, str(TOOLS / "reproduce.py"), "--table", "3", "--split", "fixed"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "does not belong to Table 3" in bad.stderr


def test_reproduce_merges_sittings_into_one_row(tmp_path):
    import beltrami
    from beltrami.training import FitResult

    for seeds, name in (([0, 1], "a.json"), ([2], "b.json")):
        res = beltrami.fit("cora", preset="fast", model="gcn", epochs=1, seeds=seeds, progress=False)
        first = "" if seeds[0] == 0 else f" --first-seed {seeds[0]}"
        command = f"python tools/reproduce.py --table 2 --seeds {len(seeds)}{first}"
        res.config["run"]["extras"] = {"table": 2, "command": command}
        res.save(tmp_path / name)
    into, md = tmp_path / "table2-cora-gcn-fast.json", tmp_path / "results.md"
    subprocess.run([sys.executable, str(TOOLS / "reproduce.py"), "--merge", str(tmp_path / "a.json"),
                    str(tmp_path / "b.json"), "--into", str(into), "--results-dir", str(tmp_path), "--markdown", str(md)],
                   capture_output=True, text=True, check=True)
    merged = FitResult.load(into)
    assert [r.seed for r in merged.runs] == [0, 1, 2]
    assert merged.config["run"]["extras"]["command"] == "python tools/reproduce.py --table 2 --seeds 3"
    assert "`python tools/reproduce.py --table 2 --seeds 3`" in md.read_text()


def test_encodings_scale_small_graph(tmp_path):
    out = tmp_path / "enc.json"
    subprocess.run([sys.executable, str(TOOLS / "encodings_scale.py"), "--which", "knn,ppr-dense",
                    "--nodes", "400", "--dense-nodes", "300", "--output", str(out)],
                   capture_output=True, text=True, check=True)
    rows = json.loads(out.read_text())["rows"]
    assert [r["which"] for r in rows] == ["knn", "ppr-dense", "ppr", "ppr-exact"]
    assert all("error" not in r and r["seconds"] > 0 and r["peak_rss"] > 0 for r in rows)
    assert rows[0]["edges"] >= 400 * 64 and rows[1]["nnz"] == rows[3]["nnz"] == 300 * 64


def test_sweep_tool_with_the_fallback_engine(tmp_path):
    pytest.importorskip("optuna")
    out = subprocess.run([sys.executable, str(TOOLS / "sweep.py"), "--dataset", "cora", "--trials", "1",
                          "--engine", "optuna", "--epochs", "1", "--space", "around", "--output", str(tmp_path / "s")],
                         capture_output=True, text=True, check=False, timeout=600)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert summary["best"] is not None
    assert set(summary["space"]) == {"lr", "weight_decay", "time", "dropout", "input_dropout"}


def test_figures_run_resumes_and_plots_every_figure(tmp_path, monkeypatch):
    """tools/figures.py: each cell trained once (a rerun skips the cells its file holds), every figure drawn."""
    import runpy
    from types import SimpleNamespace

    import beltrami

    pytest.importorskip("matplotlib")
    figures = runpy.run_path(str(TOOLS / "figures.py"))
    calls = []

    def fake_fit(dataset, **kw):
        calls.append((dataset, kw))
        run = SimpleNamespace(test_acc=0.8)
        return SimpleNamespace(test_acc=0.8, test_acc_std=0.01, runs=[run], seconds_per_epoch=0.2,
                               eval_seconds_per_epoch=0.1, epoch_seconds=0.3, epoch_seconds_median=0.3,
                               nfe_forward=20.0, config={}, versions={}, commit="abcdef0")

    monkeypatch.setattr(beltrami, "fit", fake_fit)
    for figure in (3, 4, 5):
        out = tmp_path / f"fig{figure}.json"
        figures["run"](figure, out, [0], epochs=1)
        n = len(calls)
        figures["run"](figure, out, [0], epochs=1)
        assert len(calls) == n  # resumed: nothing trained again
        data = json.loads(out.read_text())
        assert len(data["cells"]) == len(figures["CELLS"][figure])
        path = {3: figures["plot3"], 4: figures["plot4"], 5: figures["plot5"]}[figure](data, tmp_path / "plots")
        assert path.exists() and path.stat().st_size > 1000
    assert all(kw["split"] == "runner" and kw["preset"] == "paper" and kw["epochs"] == 1 for _, kw in calls)


def _official_stand_in(tmp_path):
    """A stand-in for the official runner that logs like it; its test accuracy says which split flags it got
    and whether its tuned values had rewire_KNN on."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "best_params.py").write_text("best_params_dict = {'Cora': {'rewire_KNN': False, 'rewiring': None}}\n")
    (src / "run_GNN.py").write_text(
        "import sys\n"
        "from best_params import best_params_dict\n"
        "acc = 0.5 + 0.1 * ('--planetoid_split' in sys.argv) + 0.2 * ('--not_lcc' in sys.argv)\n"
        "tuned = best_params_dict['Cora']\n"
        "acc += 0.05 * tuned['rewire_KNN'] + 0.01 * (tuned['rewiring'] == 'gdc')\n"
        "print('Epoch: 1, Runtime 0.5, Loss 1.0, forward nfe 10')\n"
        "print('Epoch: 2, Runtime 0.7, Loss 0.9, forward nfe 30')\n"
        "print(f'best val accuracy 0.7 with test accuracy {acc}')\n")
    return src


def _official_run(src, out, *args):
    subprocess.run([sys.executable, str(TOOLS / "compare_official.py"), "--official-src", str(src),
                    "--official-python", sys.executable, "--datasets", "cora", "--seeds", "0",
                    "--programs", "official", "--output", str(out), *args],
                   capture_output=True, text=True, check=True)
    [run] = json.loads(out.read_text())["runs"]
    return run


def test_compare_official_switches_the_tuned_rewiring_on(tmp_path):
    src = _official_stand_in(tmp_path)  # BLEND (no rewiring): 0.5, in the split test below
    run = _official_run(src, tmp_path / "b.json", "--model", "blend-knn")  # DIGL's graph
    assert run["model"] == "blend-knn" and run["test_acc"] == pytest.approx(0.51)
    assert _official_run(src, tmp_path / "c.json", "--model", "blend-knn-dynamic")["test_acc"] == pytest.approx(0.55)


def test_compare_official_passes_the_split_to_the_official_runner(tmp_path):
    src = _official_stand_in(tmp_path)
    cache = tmp_path / "data" / "pos_encodings" / "Cora_GDC.pkl"  # the official encoding cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    accuracies = {}
    for split in ("runner", "fixed", "public"):
        cache.write_bytes(b"rows of another graph")
        run = _official_run(src, tmp_path / f"{split}.json", "--split", split)
        assert run["split"] == split and run["nfe_forward"] == 20 and run["epochs"] == 2
        accuracies[split] = run["test_acc"]
        assert not cache.exists()  # each run computes its own encoding
    assert accuracies == pytest.approx({"runner": 0.5, "fixed": 0.6, "public": 0.8})
