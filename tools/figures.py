"""The paper's Figures 3, 4 and 5 as runs and plots (matplotlib: the [plot] extra).

    python tools/figures.py run 3 --output docs/results/figures/fig3-DATE.json [--seeds 0,1,2]
    python tools/figures.py plot 3 docs/results/figures/fig3-DATE.json --out docs/plots/

- Fig. 3, ablation of the positional encoding: BLEND, BLEND without it (z = X), GAT, and GAT on the features
  concatenated with the same PPR coordinates BLEND uses; Cora and CiteSeer.
- Fig. 4 (right), the positional dimension d': BLEND with hyperbolic (Poincare ball) and Euclidean (DeepWalk)
  coordinates of dimension d' in 2-16, against the PPR rows (d' = n) as a line; Cora.
- Fig. 5, step size: test accuracy and seconds per epoch of explicit Euler and RK4 at several fixed steps
  against the adaptive dopri5 at the same terminal time; Cora.

Every cell is ``fit(dataset, preset="paper", split="runner", seeds=...)`` with the cell's options changed
(the official runner's protocol: each seed on its own split of the largest component). The output file is
rewritten after each cell (atomically) with its config, per-seed accuracies, timings, versions and commit,
and a rerun skips the cells it already holds, so a stopped run resumes.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import beltrami
from beltrami.atomic import atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script's matplotlib loader
from plot_results import _plt  # noqa: E402

PPR = dict(pos_encoding="ppr", ppr_normalization="sym-col", ppr_topk=None)  # the paper preset's encoding
FIXED = dict(rtol=None, atol=None)  # a fixed-step scheme takes no tolerances
STEPS = (0.25, 0.5, 1.0, 2.0, 4.0)
DIMS = (2, 4, 8, 16)

# figure -> [(dataset, label, options)]
CELLS: Dict[int, List[Tuple[str, str, dict]]] = {
    3: [(ds, label, opts) for ds in ("cora", "citeseer") for label, opts in (
        ("BLEND", {}),
        # z = X; CiteSeer's tuned kernel is a product of a positional and a feature kernel: its feature factor
        ("BLEND w/o positional", dict(pos_encoding=None, **({"attention_kind": "exp_kernel"}
                                                             if ds == "citeseer" else {}))),
        ("GAT", dict(model="gat")),
        ("GAT + positional", dict(model="gat", **PPR)),
    )],
    4: [("cora", f"{kind} d'={d}", opts) for d in DIMS for kind, opts in (
        ("hyperbolic", dict(pos_encoding="hyperbolic", hyperbolic_dim=d)),
        ("Euclidean", dict(pos_encoding="deepwalk", deepwalk_dim=d)),
    )] + [("cora", "PPR d'=n", {})],
    5: [("cora", "dopri5", {})] + [("cora", f"{scheme} h={h:g}", dict(scheme=scheme, step_size=h, **FIXED))
                                   for scheme in ("euler", "rk4") for h in STEPS],
}


def run(figure: int, output: Path, seeds: List[int], epochs: Optional[int] = None) -> None:
    done = json.loads(output.read_text()) if output.exists() else {"figure": figure, "cells": []}
    have = {(c["dataset"], c["label"]) for c in done["cells"]}
    for dataset, label, opts in CELLS[figure]:
        if (dataset, label) in have:
            continue
        print(f"fig {figure}: {dataset} {label} ...", flush=True)
        extra = {} if epochs is None else {"epochs": epochs}
        r = beltrami.fit(dataset, preset="paper", split="runner", seeds=seeds, progress=False, **opts, **extra)
        done["cells"].append({
            "dataset": dataset, "label": label, "options": opts, "test_acc": r.test_acc,
            "test_acc_std": r.test_acc_std, "tests": [x.test_acc for x in r.runs], "seeds": seeds,
            "train_seconds_per_epoch": r.seconds_per_epoch, "eval_seconds_per_epoch": r.eval_seconds_per_epoch,
            "epoch_seconds": r.epoch_seconds, "epoch_seconds_median": r.epoch_seconds_median, "nfe_forward": r.nfe_forward, "config": r.config,
            "versions": r.versions, "commit": r.commit,
        })
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output, json.dumps(done, indent=1))
        print(f"  test {100 * r.test_acc:.1f} +- {100 * r.test_acc_std:.1f}, {r.epoch_seconds:.2f} s/epoch", flush=True)


def _cell(cells, dataset, label):
    return next(c for c in cells if c["dataset"] == dataset and c["label"] == label)


def _caption(data) -> str:
    seeds = sorted({len(c["seeds"]) for c in data["cells"]})
    commits = sorted({str(c["commit"])[:7] for c in data["cells"]})
    return f"{'/'.join(map(str, seeds))} seeds, runner splits, commit {', '.join(commits)}"


def plot3(data, out: Path) -> Path:
    plt = _plt()
    labels = [label for _, label, _ in CELLS[3][:4]]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.2
    for i, label in enumerate(labels):
        cells = [_cell(data["cells"], ds, label) for ds in ("cora", "citeseer")]
        ax.bar([k + (i - 1.5) * width for k in range(2)], [100 * c["test_acc"] for c in cells], width,
               yerr=[100 * c["test_acc_std"] for c in cells], capsize=3, label=label)
    ax.set_xticks(range(2), ["Cora", "CiteSeer"])
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(60, 90)
    ax.set_title(f"Fig. 3: positional encoding ablation ({_caption(data)})", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, out / "fig3-positional-ablation.png")


def plot4(data, out: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for kind, marker in (("hyperbolic", "o-"), ("Euclidean", "s-")):
        cells = [_cell(data["cells"], "cora", f"{kind} d'={d}") for d in DIMS]
        ax.errorbar(DIMS, [100 * c["test_acc"] for c in cells], [100 * c["test_acc_std"] for c in cells],
                    fmt=marker, capsize=3, label=f"{kind} (Poincare ball)" if kind == "hyperbolic" else
                    f"{kind} (DeepWalk)")
    ppr = _cell(data["cells"], "cora", "PPR d'=n")
    ax.axhline(100 * ppr["test_acc"], color="gray", ls="--", label="PPR rows, d' = n")
    ax.set_xscale("log", base=2)
    ax.set_xticks(DIMS, [str(d) for d in DIMS])
    ax.set_xlabel("positional dimension d'")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Fig. 4: Cora, positional dimension ({_caption(data)})", fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, out / "fig4-positional-dimension.png")


def plot5(data, out: Path) -> Path:
    plt = _plt()
    fig, (acc, sec) = plt.subplots(1, 2, figsize=(8, 3.4))
    ref = _cell(data["cells"], "cora", "dopri5")
    for scheme, marker in (("euler", "o-"), ("rk4", "s-")):
        cells = [_cell(data["cells"], "cora", f"{scheme} h={h:g}") for h in STEPS]
        acc.errorbar(STEPS, [100 * c["test_acc"] for c in cells], [100 * c["test_acc_std"] for c in cells],
                     fmt=marker, capsize=3, label=scheme)
        sec.plot(STEPS, [c["epoch_seconds_median"] for c in cells], marker, label=scheme)
    acc.axhline(100 * ref["test_acc"], color="gray", ls="--", label="dopri5 (adaptive)")
    sec.axhline(ref["epoch_seconds_median"], color="gray", ls="--", label="dopri5 (adaptive)")
    for ax in (acc, sec):
        ax.set_xscale("log", base=2)
        ax.set_xticks(STEPS, [f"{h:g}" for h in STEPS])
        ax.set_xlabel("step size")
        ax.legend(fontsize=7)
    acc.set_ylabel("test accuracy (%)")
    sec.set_ylabel("s/epoch, median (training + evaluation)")
    fig.suptitle(f"Fig. 5: Cora, step size ({_caption(data)})", fontsize=9)
    return _save(fig, out / "fig5-step-size.png")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train every cell of a figure (resumes a partial output file)")
    r.add_argument("figure", type=int, choices=sorted(CELLS))
    r.add_argument("--output", type=Path, required=True)
    r.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    r.add_argument("--epochs", type=int, help="epochs per run (default: the paper preset's; fewer for a smoke run)")
    q = sub.add_parser("plot", help="draw a figure from its run file")
    q.add_argument("figure", type=int, choices=sorted(CELLS))
    q.add_argument("input", type=Path)
    q.add_argument("--out", type=Path, default=Path("docs/plots"))
    args = p.parse_args(argv)
    if args.command == "run":
        run(args.figure, args.output, [int(s) for s in args.seeds.split(",")], args.epochs)
    else:
        print({3: plot3, 4: plot4, 5: plot5}[args.figure](json.loads(args.input.read_text()), args.out))


if __name__ == "__main__":
    main()
