"""asv --quick on the existing environment runs every benchmark of benchmarks/ and each returns a number."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 4 minutes of the 2-core CI's 10; run with -m slow before changing benchmarks/
@pytest.mark.skipif(shutil.which("asv") is None, reason="asv is not installed")
def test_asv_quick_runs_every_benchmark(tmp_path):
    env = {**os.environ, "BELTRAMI_ASV_SMOKE": "1"}
    subprocess.run(["asv", "machine", "--yes", "--machine", "ci"], cwd=REPO, env=env, capture_output=True)
    out = subprocess.run(["asv", "run", "--quick", "--dry-run", "--show-stderr", "-E", "existing",
                          "--machine", "ci"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    results = re.findall(r"^\[\s*\d+\.\d+%\] ··· (\S+)\s+(ok|failed|skipped|n/a)\s*$", text, re.M)
    assert len(results) >= 10, text[-3000:]
    assert all(state == "ok" for _, state in results), [r for r in results if r[1] != "ok"]
    assert "failed" not in [s for _, s in results]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("asv") is None, reason="asv is not installed")
def test_recorded_history_has_every_benchmark_ok():
    """Two commits recorded offline (each a fresh worktree: the C++ kernels build again, outside the timed
    calls) and checked by the tool itself: it exits 1 naming any benchmark without a value."""
    env = {**os.environ, "BELTRAMI_ASV_SMOKE": "1"}
    out = subprocess.run([sys.executable, "tools/asv_history.py", "--quick", "--bench", "TrainBLEND|Spmm", "HEAD~1",
                          "HEAD"], cwd=REPO, env=env, capture_output=True, text=True, timeout=3000)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert out.stdout.count("every benchmark ok") == 2, out.stdout[-3000:]


def test_history_check_names_benchmarks_without_a_value(tmp_path):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from asv_history import failed_benchmarks
    finally:
        sys.path.pop(0)
    machine = tmp_path / "box"
    machine.mkdir()
    (machine / "abcdef12-existing-py.json").write_text(
        '{"results": {"a.T.time_x": [[0.1, 0.2], [["1", "2"]]], "a.T.time_y": [[0.1, null]], "a.T.track_z": [null]}}')
    assert failed_benchmarks(tmp_path, "box", "abcdef1234") == ["a.T.time_y", "a.T.track_z"]
    with pytest.raises(FileNotFoundError):
        failed_benchmarks(tmp_path, "box", "00000000")
