"""Hyper-parameter sweep of BLEND on one dataset through Ray Tune (or the Optuna fallback).

    pip install -e ".[tune]"
    python tools/sweep.py --dataset cora --trials 20 --engine ray --output docs/results/sweep-cora
    python tools/sweep.py --dataset cora --trials 20 --engine optuna          # no Ray: local TPE
    python tools/sweep.py --dataset cora --address ray://head:10001          # an existing Ray cluster

The search space is the official code's Cora space (``beltrami.sweep.space.PAPER_SPACE``) around the
``paper`` preset; every trial trains with ``--split`` and ``--seeds``, and is ranked by validation accuracy.
Writes one FitResult JSON per trial and ``sweep.json`` into ``--output``, then prints the best trials.
"""
import argparse
import sys

from rich.console import Console
from rich.table import Table

from beltrami.sweep import ENGINES, PAPER_SPACE, space_around, sweep
from beltrami.training.config import preset_values


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cora")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--engine", choices=ENGINES, default="ray")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--split", default="random", help="split of every trial (default: random, on the LCC)")
    p.add_argument("--seeds", type=int, default=1, help="seeds (and random splits) per trial")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: the preset's)")
    p.add_argument("--space", choices=("paper", "around"), default="paper",
                   help="the official Cora space (default) or one around the paper preset's values")
    p.add_argument("--factor", type=float, default=2.0, help="--space around: how far rates and time go")
    p.add_argument("--output", default="sweep")
    args = p.parse_args(argv)
    fixed = {} if args.epochs is None else {"epochs": args.epochs}
    try:
        space = (PAPER_SPACE if args.space == "paper"
                 else space_around(preset_values("paper", args.dataset), factor=args.factor))
    except ValueError as err:
        p.error(f"--space {args.space}: {err}")
    summary = sweep(args.dataset, trials=args.trials, engine=args.engine, space=space, output=args.output,
                    seed=args.seed, address=args.address, max_concurrent=args.max_concurrent, split=args.split,
                    seeds=list(range(args.seeds)), **fixed)
    table = Table(title=f"{args.engine} sweep on {args.dataset}: {len(summary['trials'])} trials, "
                        f"{summary['seconds']:.0f} s")
    for col in ("trial", "val", "test", "s/epoch", "params"):
        table.add_column(col)
    done = sorted((r for r in summary["trials"] if "val_acc" in r), key=lambda r: -r["val_acc"])
    for r in done[:10]:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items())
        table.add_row(str(r["trial"]), f"{100 * r['val_acc']:.1f}", f"{100 * r['test_acc']:.1f}",
                      f"{r['seconds_per_epoch']:.2f}", params)
    Console().print(table)
    failed = [r for r in summary["trials"] if "error" in r]
    if failed:
        Console().print(f"{len(failed)} trial(s) failed: " + "; ".join(str(r["error"])[:80] for r in failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
