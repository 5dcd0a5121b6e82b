"""Record asv results for several commits with the existing environment (no per-commit build, offline),
then compare the first and the last.

    python tools/asv_history.py HEAD~2 HEAD~1 HEAD        # record three commits, then `asv compare`
    python tools/asv_history.py --quick HEAD~2 HEAD

asv's own `asv run HASH1..HASH2` needs an environment it can build per commit (``-E virtualenv``, from the
package index). This does the same offline: each commit is checked out in a temporary git worktree and put
first on the benchmarks' import path (``ASV_PYTHONPATH``), and the run is recorded under that commit's hash
(``--set-commit-hash``). As asv does, the benchmark definitions are this checkout's, so every commit is
measured by the same suite.
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout.strip()


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
    if len(hashes) > 1:
        subprocess.run(["asv", "compare", "--machine", machine, hashes[0], hashes[-1]], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
