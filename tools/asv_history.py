"""Record asv results for several commits with the existing environment (no per-commit build, offline),
then compare the first and the last.

    python tools/asv_history.py HEAD~2 HEAD~1 HEAD        # record three commits, then `asv compare`
    python tools/asv_history.py --quick HEAD~2 HEAD

asv's own `asv run HASH1..HASH2` needs an environment it can build per commit (``-E virtualenv``, from the
package index). This does the same offline: each commit is checked out in a temporary git worktree and put
first on the benchmarks' import path (``ASV_PYTHONPATH``), and the run is recorded under that commit's hash
(``--set-commit-hash``). As asv does, the benchmark definitions are this checkout's, so every commit is
measured by the same suite. Exits 1, naming them, if any benchmark of any commit recorded no value (a
failure or a timeout).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


def failed_benchmarks(results_dir: Path, machine: str, commit: str) -> list:
    """Benchmarks recorded for ``commit`` with a missing value (asv writes null where a benchmark failed or
    timed out); raises if nothing was recorded for it."""
    files = list((results_dir / machine).glob(f"{commit[:8]}-*.json"))
    if not files:
        raise FileNotFoundError(f"no asv results for {commit[:10]} under {results_dir / machine}")
    failed = []
    for f in files:
        data = json.loads(f.read_text())
        for name, entry in data.get("results", {}).items():
            values = entry[0] if isinstance(entry, list) else entry
            values = values if isinstance(values, list) else [values]
            if not values or any(v is None for v in values):
                failed.append(name)
    return sorted(failed)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("commits", nargs="+", help="commits, oldest first")
    p.add_argument("--quick", action="store_true", help="asv --quick (one sample per benchmark)")
    p.add_argument("--bench", default=None, help="asv --bench regex")
    args = p.parse_args(argv)
    hashes = [git("rev-parse", c) for c in args.commits]
    machine = platform.node()  # the name `asv machine --yes` records; compare needs it when several exist
    subprocess.run(["asv", "machine", "--yes", "--machine", machine], check=True, capture_output=True)
    for h in hashes:
        with tempfile.TemporaryDirectory(prefix="asv-") as tmp:
            tree = str(Path(tmp) / "tree")
            git("worktree", "add", "--detach", tree, h)
            try:
                cmd = ["asv", "run", "-E", "existing", "--set-commit-hash", h, "--show-stderr", "--machine", machine]
                cmd += ["--quick"] if args.quick else []
                cmd += ["--bench", args.bench] if args.bench else []
                print(f"== {h[:10]} {git('log', '-1', '--format=%s', h)[:70]}", flush=True)
                subprocess.run(cmd, check=True, env={**os.environ, "ASV_PYTHONPATH": tree})
            finally:
                git("worktree", "remove", "--force", tree)
    results_dir = Path(".asv/results")  # asv.conf.json's results_dir
    bad = {h: failed_benchmarks(results_dir, machine, h) for h in hashes}
    for h, names in bad.items():
        print(f"{h[:10]}: {'every benchmark ok' if not names else 'FAILED ' + ', '.join(names)}", flush=True)
    if any(bad.values()):
        return 1
    if len(hashes) > 1:
        subprocess.run(["asv", "compare", "--machine", machine, hashes[0], hashes[-1]], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
