"""asv --quick on the existing environment runs every benchmark of benchmarks/ and each returns a number."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
