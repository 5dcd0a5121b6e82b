from beltrami.bench.cli import main


def test_summary_of_embedded_cora(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BELTRAMI_DATA", str(tmp_path))
    assert main(["--dataset", "cora", "--no-download"]) == 0
    out = capsys.readouterr().out
    assert "2708" in out and "5278" in out and "140/500/1000" in out and "embedded 8/8" in out


def test_all_reports_missing_files(capsys, shared_data):
    assert main(["--dataset", "all", "--root", str(shared_data), "--no-download"]) == 0
    out = capsys.readouterr().out
    assert "verified 8/8" in out and "ind.pubmed.allx missing" in out
    assert "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/ms_academic_cs.npz" in out.replace("\n", "")


def test_unknown_dataset_exit_code(capsys):
    assert main(["--dataset", "nope"]) == 2
    assert "unknown dataset" in capsys.readouterr().out
