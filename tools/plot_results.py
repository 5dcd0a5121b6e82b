"""Plots from the JSON that beltrami-bench and tools/scaling.py write (needs the [plot] extra).

    python tools/plot_results.py --bench r.json --scaling scaling.json --out plots/

Writes accuracy_vs_nfe.png (test accuracy against forward NFE per epoch, one marker per scheme x backprop),
seconds_per_epoch.png (bars per scheme x backprop) and scaling.png (log-log time and working set against
edges, with the fitted slopes).
"""
import argparse
import json
import sys
from pathlib import Path


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("matplotlib is missing: pip install -e '.[plot]'")
    return plt


def plot_bench(path: Path, out: Path) -> list:
    plt = _plt()
    rows = [r for r in json.loads(path.read_text())["rows"] if not r.get("error")]
    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.scatter(r["nfe_forward"], 100 * r["test_acc"], label=f"{r['dataset']} {r['scheme']} {r['backprop']}")
    ax.set_xlabel("NFE forward per epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_nfe.png", dpi=120)
    written.append(out / "accuracy_vs_nfe.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [f"{r['dataset']}\n{r['scheme']}\n{r['backprop']}" for r in rows]
    ax.bar(range(len(rows)), [r["seconds_per_epoch"] for r in rows])
    ax.set_xticks(range(len(rows)), labels, fontsize=6)
    ax.set_ylabel("seconds per epoch")
    fig.tight_layout()
    fig.savefig(out / "seconds_per_epoch.png", dpi=120)
    written.append(out / "seconds_per_epoch.png")
    return written


def plot_scaling(path: Path, out: Path) -> list:
    plt = _plt()
    data = json.loads(path.read_text())
    rows = data["rows"]
    edges = [r["edges"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(edges, [r["seconds"] for r in rows], "o-", label=f"time (slope {data['time_slope']:.2f})")
    ax.loglog(edges, [r["working_set"] / 2**30 for r in rows], "s-",
              label=f"working set GiB (slope {data['memory_slope']:.2f})")
    ax.set_xlabel("edges")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=120)
    return [out / "scaling.png"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", type=Path, default=None, help="JSON written by beltrami-bench --output")
    p.add_argument("--scaling", type=Path, default=None, help="JSON written by tools/scaling.py")
    p.add_argument("--out", type=Path, default=Path("plots"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    if args.bench:
        written += plot_bench(args.bench, args.out)
    if args.scaling:
        written += plot_scaling(args.scaling, args.out)
    for w in written:
        print(w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
