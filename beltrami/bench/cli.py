"""`beltrami-bench`: the command-line face of the project.

For now it loads datasets and prints their summary (nodes, edges, features, classes, split sizes, LCC,
file status); training and benchmark grids build on the same entry point.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from rich.console import Console
from rich.table import Table

from ..datasets import DATASETS, DatasetFileError, file_list, load_dataset
from ..datasets import files as F
from ..datasets.load import canonical_name
from ..paths import data_root

PAPER_DATASETS = ("cora", "citeseer", "pubmed", "coauthor-cs", "computers", "photo", "ogbn-arxiv")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="beltrami-bench", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cora",
                   help=f"dataset name, comma list, or 'all' (the paper's seven); names: {', '.join(DATASETS)}")
    p.add_argument("--root", default=None, help="data root (default $BELTRAMI_DATA, then ~/.cache/beltrami/data)")
    p.add_argument("--split", default=None, choices=("public", "random", "time"),
                   help="split (default: the dataset's own)")
    p.add_argument("--seed", type=int, default=0, help="seed of random splits and synthetic graphs")
    p.add_argument("--no-download", action="store_true", help="never download missing files")
    return p


def _names(arg: str) -> List[str]:
    if arg.strip().lower() == "all":
        return list(PAPER_DATASETS)
    return [canonical_name(n) for n in arg.split(",") if n.strip()]


def file_status(name: str, root: Optional[str]) -> str:
    """'verified 8/8', 'embedded 8/8', 'synthetic', or the files that are missing or corrupt."""
    rels = file_list(name)
    if not rels:
        return "synthetic"
    states = {r: F.status(r, root) for r in rels}
    bad = [f"{r.split('/')[-1]} {s.split(' ')[0]}" for r, s in states.items() if s not in ("verified", "embedded")]
    if bad:
        return ", ".join(bad)
    kind = "embedded" if all(s == "embedded" for s in states.values()) else "verified"
    return f"{kind} {len(rels)}/{len(rels)}"


def summary_table(names: Sequence[str], args: argparse.Namespace, console: Console) -> Table:
    """Load each dataset and tabulate its summary; a dataset whose files are missing gets a row saying so
    and its error (which names the file and URL) printed under the table."""
    table = Table(title=f"beltrami datasets (data root {data_root(args.root)})")
    for col, justify in (("dataset", "left"), ("nodes", "right"), ("edges", "right"), ("features", "right"),
                         ("classes", "right"), ("split", "left"), ("train/val/test", "left"), ("LCC", "left"),
                         ("files", "left")):
        table.add_column(col, justify=justify)
    notes = []
    for name in names:
        status = file_status(name, args.root)
        try:
            ds = load_dataset(name, args.root, split=args.split, seed=args.seed, download=not args.no_download)
        except DatasetFileError as err:
            table.add_row(name, *["-"] * 7, f"[red]{status}[/red]")
            notes.append(f"[yellow]{name}[/yellow]: {err}")
            continue
        s = ds.summary()
        table.add_row(name, str(s["nodes"]), str(s["undirected_edges"]), str(s["features"]), str(s["classes"]),
                      s["split"], f"{s['train']}/{s['val']}/{s['test']}", "yes" if s["lcc"] else "no", status)
    console.print(table)
    for note in notes:
        console.print(note)
    return table


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(width=max(Console().width, 120))
    try:
        names = _names(args.dataset)
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    summary_table(names, args, console)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
