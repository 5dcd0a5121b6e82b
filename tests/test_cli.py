import csv
import json

import pytest

from beltrami.bench.cli import COLUMNS, main
from beltrami.sparse import available_backends


def test_summary_of_embedded_cora(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BELTRAMI_DATA", str(tmp_path))
    assert main(["--dataset", "cora", "--no-download", "--summary-only"]) == 0
    out = capsys.readouterr().out
    assert "2708" in out and "5278" in out and "140/500/1000" in out and "embedded 8/8" in out


def test_all_reports_missing_files(capsys, shared_data):
    assert main(["--dataset", "all", "--root", str(shared_data), "--no-download", "--summary-only"]) == 0
    out = capsys.readouterr().out
    assert "verified 8/8" in out and "ind.pubmed.allx missing" in out
    assert "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/ms_academic_cs.npz" in out.replace("\n", "")


def test_unknown_dataset_exit_code(capsys):
    assert main(["--dataset", "nope"]) == 2
    assert "unknown dataset" in capsys.readouterr().out


def test_grid_writes_json_and_csv_and_survives_a_failure(tmp_path, capsys, monkeypatch):
    """2 models x 2 schemes x 2 backprop modes on a tiny synthetic graph write every column; then a grid
    with a row that cannot run (a step size for an adaptive scheme) reports that row's error and still runs
    the other."""
    out = tmp_path / "r.json"
    code = main(["--dataset", "synthetic", "--nodes", "200", "--classes", "3", "--features", "8",
                 "--model", "blend,grand-l", "--scheme", "rk4,implicit_euler", "--backprop", "direct,adjoint",
                 "--epochs", "2", "--output", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert len(data["rows"]) == 8 and all(not r["error"] for r in data["rows"])
    assert {"versions", "machine", "commit", "argv"} <= set(data["meta"])
    for r in data["rows"]:
        assert set(COLUMNS) - {"error"} <= set(r)
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and list(rows[0]) == list(COLUMNS)
    monkeypatch.chdir(tmp_path)  # without --output the rows go to a dated file in the current folder
    code = main(["--dataset", "synthetic", "--nodes", "200", "--scheme", "dopri5,rk4", "--step-size", "1",
                 "--epochs", "1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "scheme dopri5 is adaptive" in text and "failed" in text
    dated = sorted(tmp_path.glob("beltrami-bench-*.json"))
    assert len(dated) == 1 and [r["scheme"] for r in json.loads(dated[0].read_text())["rows"]] == ["dopri5", "rk4"]
    assert text.rstrip().splitlines()[-1].startswith("trained blend on synthetic: test accuracy")
    assert text.rstrip().endswith(f"rows in {dated[0].name}")


def test_the_main_job_prints_80_columns_and_ends_with_what_it_trained(tmp_path, capsys, monkeypatch):
    """The README's first command on a small graph: every table line fits an 80-column terminal (headers were
    cut to 'datas…', 'backp…' at 120 forced columns), and the last line says what, how well and where."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(tmp_path)
    assert main(["--dataset", "cora", "--epochs", "1", "--no-output"]) == 0
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert max(len(line) for line in lines[:-1]) <= 80 and not any("…" in line for line in lines)
    assert lines[-1].startswith("trained blend on cora: test accuracy ") and "rows in" not in lines[-1]
    assert not list(tmp_path.iterdir())  # --no-output


@pytest.mark.parametrize("args, message", [
    (["--runs", "0"], "argument --runs: 0 must be >= 1, got 0"),
    (["--epochs", "two"], "argument --epochs: 'two' is not an integer"),
    (["--step-size", "nan"], "argument --step-size: nan must be a finite number in (0, inf), got nan"),
    (["--model", "blend,sage"], "--model: unknown 'sage'; valid: blend"),
    (["--scheme", "rk5"], "--scheme: unknown 'rk5'"),
    (["--compile", "jit"], "--compile: unknown 'jit'"),
    (["--output", "/proc/no/r.json"], "--output='/proc/no/r.json' cannot be written"),
])
def test_bad_arguments_stop_before_any_data_is_loaded(args, message, capsys, monkeypatch):
    monkeypatch.setattr("beltrami.bench.cli.summary_table", lambda *a: pytest.fail("data was loaded"))
    with pytest.raises(SystemExit) as stop:
        main(["--dataset", "cora", *args])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def _grid(tmp_path):
    return ["--dataset", "synthetic", "--nodes", "200", "--classes", "3", "--features", "4", "--scheme",
            "euler,rk4", "--epochs", "1", "--output", str(tmp_path / "r.json")]


def test_a_stopped_grid_keeps_the_rows_before(tmp_path, monkeypatch):
    """Before, the rows were written once, at the end: Ctrl-C in the second combination lost the first."""
    from beltrami.bench import cli

    real, calls = cli.fit, []

    def fit(*args, **kw):
        calls.append(kw["scheme"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(cli, "fit", fit)
    with pytest.raises(KeyboardInterrupt):
        main(_grid(tmp_path))
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [r["scheme"] for r in rows] == ["euler"] and not rows[0]["error"]


def test_rows_that_cannot_be_written_go_to_a_fallback(tmp_path, monkeypatch, capsys):
    from beltrami.bench import cli

    real = cli.write_results

    def write(rows, path, *rest):
        if path == str(tmp_path / "r.json"):
            raise OSError(28, "No space left on device")
        real(rows, path, *rest)

    monkeypatch.setattr(cli, "write_results", write)
    monkeypatch.setattr(cli.tempfile, "gettempdir", lambda: str(tmp_path))
    assert main(_grid(tmp_path)) == 1
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "could not write" in out and "No space left on device" in out
    fallback = [p for p in tmp_path.iterdir() if p.name.startswith("beltrami-bench-") and p.suffix == ".json"]
    assert len(json.loads(fallback[0].read_text())["rows"]) == 2


@pytest.mark.parametrize("allocator, key", [("keep-freed", "keep_freed_memory"), ("pooled", "pool_memory")])
def test_allocator_option_reaches_the_recorded_config(tmp_path, allocator, key):
    from beltrami.allocator import cpu_tensors_pooled, keep_freed_memory, pool_cpu_tensors

    if allocator == "pooled" and "cpp" not in available_backends():
        pytest.skip("the pool lives in the C++ kernels")
    out = tmp_path / "r.json"
    try:
        assert main(["--dataset", "synthetic", "--nodes", "100", "--classes", "2", "--features", "4",
                     "--scheme", "euler", "--epochs", "1", "--allocator", allocator, "--output", str(out)]) == 0
        assert not cpu_tensors_pooled()  # each fit restores the allocator it found
    finally:
        keep_freed_memory(False)
        if allocator == "pooled":
            pool_cpu_tensors(False)
    row = json.loads(out.read_text())["rows"][0]
    assert row["config"][key] is True and not row["error"]
    assert row["frozen"] is True  # the fast preset's attention


def test_sparse_backends_are_a_grid_dimension(tmp_path):
    # time-dependent attention: with cpp, the fused kernel trains the model
    out = tmp_path / "r.json"
    kernels = [b for b in available_backends() if b in ("torch", "cpp")]
    assert main(["--dataset", "synthetic", "--nodes", "100", "--classes", "2", "--features", "4",
                 "--scheme", "euler", "--epochs", "2", "--sparse-backend", ",".join(kernels),
                 "--attention", "time-dependent", "--output", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["sparse_backend"] for r in rows] == kernels and not any(r["error"] for r in rows)
    assert [r["frozen"] for r in rows] == [False] * len(kernels)
    assert [r["config"]["sparse_backend"] for r in rows] == kernels
    # the same seed through either kernel trains to the same accuracy
    assert len({round(r["test_acc"], 6) for r in rows}) == 1


def test_help_has_the_whole_description_and_every_example():
    from beltrami.bench.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "compile modes x sparse kernels." in text
    assert "--sparse-backend torch,cpp --epochs 3" in text and "--summary-only" in text
