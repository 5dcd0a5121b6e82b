"""`beltrami-bench`: train and benchmark models over a grid of datasets x schemes x backprop x compile modes x
sparse kernels.

    beltrami-bench --dataset cora                         # BLEND (preset fast) on the embedded Cora
    beltrami-bench --dataset cora,citeseer --scheme rk4,dopri5 --backprop direct,adjoint --output r.json
    beltrami-bench --dataset synthetic --nodes 169343 --edges 1166243 --classes 40 --features 128 --quick
    beltrami-bench --dataset all --summary-only           # dataset table and file status, no training
    beltrami-bench --dataset synthetic-arxiv --preset paper --sparse-backend torch,cpp --epochs 3

Every combination is one row (accuracy mean ± std, NFE forward/backward per epoch, seconds per training step
and per evaluation, the median whole epoch, start-up and wall time of the run, peak memory, speed-up of the
median epoch against the first row); a failing combination reports its error and the grid goes on. Every row
(config, versions, machine, commit) is written as JSON and CSV after it ran, to ``--output`` or a dated file in
the current folder; the last line says what was trained, how well, and where the rows are.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from ..allocator import ALLOCATORS, ensure_huge_pages, huge_pages_active
from ..atomic import atomic_write_text
from ..datasets import DATASETS, DatasetFileError, file_list, load_dataset
from ..datasets import files as F
from ..datasets.load import SPLITS, canonical_name
from ..paths import data_root
from ..functions.compile import COMPILE_MODES
from ..solvers.base import ALIASES, SCHEMES
from ..solvers.solve import BACKPROP
from ..sparse.spmm import BACKENDS
from ..training import PRESETS, fit
from ..training.config import MODELS
from ..training.sections import flat_config
from ..validation import check_int, check_real, check_writable_file
from ..training.result import git_commit, versions

PAPER_DATASETS = ("cora", "citeseer", "pubmed", "coauthor-cs", "computers", "photo", "ogbn-arxiv")
COLUMNS = ("dataset", "model", "scheme", "backprop", "compile", "sparse_backend", "test_acc", "test_acc_std", "val_acc",
           "nfe_forward", "nfe_backward", "seconds_per_epoch", "seconds_per_epoch_median", "eval_seconds_per_epoch",
           "epoch_seconds", "epoch_seconds_median", "startup_seconds", "wall_seconds", "peak_memory_MB",
           "speedup", "error")


def _number(kind: type, low: float, low_open: bool = False):
    """An argparse type: a ``kind`` number of at least (or above, ``low_open``) ``low``, checked by the
    package's own checks."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}")
        try:
            return check_int(value, "value", low) if kind is int else check_real(value, "value", low, None, low_open)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err).replace("value must be", f"{text} must be"))
    return parse


# the comma-list options, with the values each element may take
LIST_CHOICES = {"model": MODELS, "scheme": tuple(SCHEMES) + tuple(ALIASES), "backprop": BACKPROP,
                "compile": COMPILE_MODES, "sparse_backend": BACKENDS}


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, before any data is loaded, list elements no run could take and an output that cannot be written."""
    for name, valid in LIST_CHOICES.items():
        bad = [v for v in _list(getattr(args, name)) if v is not None and v not in valid]
        if bad:
            p.error(f"--{name.replace('_', '-')}: unknown {', '.join(map(repr, bad))}; valid: {', '.join(valid)}")
    if args.output:
        try:
            check_writable_file(args.output, "--output")
            check_writable_file(_csv_path(args.output), "--output's CSV")
        except (OSError, ValueError) as err:
            p.error(str(err))


def build_parser() -> argparse.ArgumentParser:
    head, examples = __doc__.split("\n\n")[:2]
    p = argparse.ArgumentParser(prog="beltrami-bench", description=" ".join(head.split()),
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=examples)
    p.add_argument("--dataset", default="cora",
                   help=f"dataset name, comma list, or 'all' (the paper's seven); names: {', '.join(DATASETS)}")
    p.add_argument("--root", default=None, help="data root (default $BELTRAMI_DATA, then ~/.cache/beltrami/data)")
    p.add_argument("--split", default=None, choices=SPLITS, help="split (default: the dataset's)")
    p.add_argument("--model", default="blend", help="comma list of blend, blend-knn, grand-l, gcn, gat")
    p.add_argument("--preset", default="fast", choices=PRESETS, help="starting configuration (default fast)")
    p.add_argument("--scheme", default=None, help="comma list of schemes (default: the preset's)")
    p.add_argument("--step-size", type=_number(float, 0.0, True), default=None, help="step of fixed-step/implicit schemes")
    p.add_argument("--backprop", default=None, help="comma list of direct, adjoint (default: the preset's)")
    p.add_argument("--compile", default="eager", help="comma list of eager, script, compile")
    p.add_argument("--attention", default=None, choices=("frozen", "time-dependent"),
                   help="BLEND's attention: frozen at z(0) or recomputed at every evaluation, the time-dependent "
                        "Beltrami flow, whose dot-product attention the cpp backend fuses (default: the preset's)")
    p.add_argument("--sparse-backend", default=None,
                   help="comma list of torch, torch_sparse, cpp: the sparse kernels (cpp also fuses a "
                        "time-dependent flow's dot-product attention; default: $BELTRAMI_SPARSE_BACKEND or torch; "
                        "see beltrami.sparse.spmm)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--allocator", default="system", choices=ALLOCATORS,
                   help="CPU memory: the system's (default); pooled, big tensors reuse freed blocks of their "
                        "size instead of page-faulting fresh ones in (the fastest on big graphs, at about the same peak "
                        "memory; needs the C++ kernels); keep-freed, glibc keeps freed memory (no compiler "
                        "needed, several times the peak memory); or huge-pages, PyTorch's "
                        "transparent huge pages for big tensors (the command starts again with "
                        "THP_MEM_ALLOC_ENABLE=1); see beltrami.allocator")
    p.add_argument("--epochs", type=_number(int, 1), default=None, help="training epochs (default: the preset's)")
    p.add_argument("--runs", type=_number(int, 1), default=1, help="seeds per combination")
    p.add_argument("--seed", type=_number(int, 0), default=0, help="first seed (also of random splits and synthetic graphs)")
    p.add_argument("--quick", action="store_true", help="5 epochs per combination")
    p.add_argument("--output", default=None, help="write rows to this JSON file and a .csv beside it (default: "
                   "beltrami-bench-DATE-TIME.json in the current folder)")
    p.add_argument("--no-output", action="store_true", help="write no result file")
    p.add_argument("--summary-only", action="store_true", help="print the dataset table only; no training")
    p.add_argument("--no-download", action="store_true", help="never download missing files")
    syn = p.add_argument_group("synthetic graphs (--dataset synthetic)")
    syn.add_argument("--nodes", type=_number(int, 1), default=2000)
    syn.add_argument("--edges", type=_number(int, 0), default=None, help="undirected edges (default nodes * 4)")
    syn.add_argument("--classes", type=_number(int, 2), default=4)
    syn.add_argument("--features", type=_number(int, 1), default=32)
    syn.add_argument("--homophily", type=_number(float, 0.0), default=0.8)
    return p


def _names(arg: str) -> List[str]:
    if arg.strip().lower() == "all":
        return list(PAPER_DATASETS)
    return [canonical_name(n) for n in arg.split(",") if n.strip()]


def _list(arg: Optional[str]) -> List[Optional[str]]:
    return [None] if arg is None else [a.strip() for a in arg.split(",") if a.strip()]


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


def _synthetic_options(args: argparse.Namespace) -> Dict[str, Any]:
    return dict(num_nodes=args.nodes, num_edges=args.edges if args.edges is not None else 4 * args.nodes,
                num_classes=args.classes, num_features=args.features, homophily=args.homophily)


def _load(name: str, args: argparse.Namespace):
    options = _synthetic_options(args) if name == "synthetic" else {}
    return load_dataset(name, args.root, split=args.split, seed=args.seed, download=not args.no_download, **options)


def summary_table(names: Sequence[str], args: argparse.Namespace, console: Console) -> Dict[str, Any]:
    """Load each dataset and tabulate its summary; a dataset whose files are missing gets a row saying so
    and its error (which names the file and URL) printed under the table. Returns the loaded datasets."""
    table = Table(title=f"datasets in {data_root(args.root)}", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    for col, justify in (("dataset", "left"), ("nodes", "right"), ("edges", "right"), ("feat.", "right"),
                         ("cls", "right"), ("split", "left"), ("train/val/test", "left"), ("files", "left")):
        table.add_column(col, justify=justify, no_wrap=True)
    notes, loaded = [], {}
    for name in names:
        status = file_status(name, args.root)
        try:
            ds = _load(name, args)
        except DatasetFileError as err:  # the row says so in a word; which files, and where from, below it
            table.add_row(name, *["-"] * 6, "[red]missing[/red]")
            notes.append(f"[yellow]{name}[/yellow]: {status}. {err}")
            continue
        loaded[name] = ds
        s = ds.summary()
        table.add_row(name, str(s["nodes"]), str(s["undirected_edges"]), str(s["features"]), str(s["classes"]),
                      s["split"] + (" (LCC)" if s["lcc"] else ""), f"{s['train']}/{s['val']}/{s['test']}", status)
    console.print(table)
    for note in notes:
        console.print(note)
    return loaded


def run_grid(datasets: Dict[str, Any], args: argparse.Namespace, console: Console,
             finished: Optional[Callable[[List[Dict[str, Any]]], None]] = None) -> List[Dict[str, Any]]:
    """Train every combination; a failure becomes its row's ``error``. ``finished(rows)`` is called after
    each row."""
    rows: List[Dict[str, Any]] = []
    grid = list(itertools.product(datasets, _list(args.model), _list(args.scheme), _list(args.backprop),
                                  _list(args.compile), _list(args.sparse_backend)))
    for i, (name, model, scheme, backprop, mode, kernel) in enumerate(grid, 1):
        options: Dict[str, Any] = {"model": model, "compile": mode, "device": args.device, "runs": args.runs,
                                   "seed": args.seed, "progress": True, "sparse_backend": kernel,
                                   "keep_freed_memory": args.allocator == "keep-freed",
                                   "pool_memory": args.allocator == "pooled"}
        frozen = None if args.attention is None else args.attention == "frozen"
        for key, value in (("scheme", scheme), ("backprop", backprop), ("step_size", args.step_size),
                           ("epochs", 5 if args.quick else args.epochs), ("frozen", frozen)):
            if value is not None:
                options[key] = value
        if scheme is not None and args.step_size is None and scheme in ("euler", "rk4", "implicit_euler",
                                                                       "crank_nicolson"):
            options["step_size"] = 1.0
        if scheme in ("dopri5", "bosh3"):
            options.setdefault("step_size", None)
        console.print(f"[bold]({i}/{len(grid)})[/bold] {name} {model} scheme={scheme or 'preset'} "
                      f"backprop={backprop or 'preset'} compile={mode} kernel={kernel or 'default'}")
        row: Dict[str, Any] = {"dataset": name, "model": model, "compile": mode, "sparse_backend": kernel}
        try:
            res = fit(datasets[name], preset=args.preset, **options)
            cfg = flat_config(res.config)
            row.update(scheme=cfg["scheme"], backprop=cfg["backprop"], frozen=cfg["frozen"], test_acc=res.test_acc,
                       test_acc_std=res.test_acc_std, val_acc=res.val_acc, nfe_forward=res.nfe_forward,
                       nfe_backward=res.nfe_backward, seconds_per_epoch=res.seconds_per_epoch,
                       seconds_per_epoch_median=res.seconds_per_epoch_median,
                       eval_seconds_per_epoch=res.eval_seconds_per_epoch, epoch_seconds=res.epoch_seconds,
                       epoch_seconds_median=res.epoch_seconds_median, startup_seconds=res.startup_seconds,
                       wall_seconds=res.wall_seconds, peak_memory_MB=res.peak_memory_bytes / 2**20, num_parameters=res.num_parameters,
                       config=cfg, error="")
        except Exception as err:  # a failed combination (OOM, solver underflow) must not stop the grid
            row.update(scheme=scheme, backprop=backprop, error=f"{type(err).__name__}: {err}")
            console.print(f"[red]failed:[/red] {row['error']}")
        rows.append(row)
        if finished is not None:
            finished(_with_speedup(rows))
    return _with_speedup(rows)


def _with_speedup(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each row's speed-up against the first that ran, on the median whole epoch (training step and
    evaluation, what a user waits for)."""
    # not the mean, which carries the first epoch's warm-up (CUDA context, torch.compile, Triton's kernel
    # compilation): that made a 2.1x faster kernel read as 0.53x over 15 epochs on an H200
    base = next((r["epoch_seconds_median"] for r in rows if not r.get("error")), None)
    for r in rows:
        median = r.get("epoch_seconds_median")
        r["speedup"] = base / median if base and median else None
    return rows


# what each row was run with, as (header, how to read it from a row); a value shared by every row goes to
# the table's title instead of a column, so that the table fits an 80-column terminal
SETTINGS = (("dataset", lambda r: r["dataset"]), ("model", lambda r: r["model"]),
            ("scheme", lambda r: str(r.get("scheme"))), ("backprop", lambda r: str(r.get("backprop"))),
            ("compile", lambda r: r["compile"]), ("kernel", lambda r: r.get("sparse_backend") or "default"))


def results_table(rows: List[Dict[str, Any]]) -> Table:
    """The rows' measurements; settings that differ between rows are columns, the shared ones the title."""
    varying = [(name, get) for name, get in SETTINGS if len({get(r) for r in rows}) > 1]
    shared = [f"{name} {get(rows[0])}" if name in ("kernel", "compile") else get(rows[0])
              for name, get in SETTINGS if (name, get) not in varying]
    table = Table(title=", ".join(shared), caption="test: accuracy (%), mean±std over seeds; train s: median "
                  "training step; eval s: mean evaluation; epoch s: median of both; wall s: the whole run; MB: peak "
                  "memory; speed: the first run's epoch s over this one's", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True, caption_justify="left")
    metrics = ["test", "val", "NFE f/b", "train s", "eval s", "epoch s", "wall s", "MB"]
    metrics += ["speed"] if len(rows) > 1 else []
    if varying:  # rows numbered, their settings listed in the caption: columns of them would not fit 80
        table.add_column("run", justify="right", no_wrap=True)
        runs = ", ".join(f"{i} {'/'.join(get(r) for _, get in varying)}" for i, r in enumerate(rows, 1))
        table.caption = f"runs ({'/'.join(name for name, _ in varying)}): {runs}. " + table.caption
    for col in metrics:
        table.add_column(col, justify="right", no_wrap=True)
    for i, r in enumerate(rows, 1):
        settings = [str(i)] if varying else []
        if r.get("error"):
            table.add_row(*settings, "[red]failed[/red]", *[""] * (len(metrics) - 1))  # its error: printed above
            continue
        table.add_row(*settings, f"{100 * r['test_acc']:.1f}±{100 * r['test_acc_std']:.1f}", f"{100 * r['val_acc']:.1f}",
                      f"{r['nfe_forward']:.0f}/{r['nfe_backward']:.0f}", f"{r['seconds_per_epoch_median']:.3f}",
                      f"{r['eval_seconds_per_epoch']:.3f}", f"{r['epoch_seconds_median']:.3f}",
                      f"{r['wall_seconds']:.1f}", f"{r['peak_memory_MB']:.0f}",
                      *([f"{r['speedup']:.2f}x"] if len(rows) > 1 else []))
    return table


def closing_line(rows: List[Dict[str, Any]], output: Optional[str]) -> str:
    """One line: what was trained, its accuracy and where the rows are (the best row of a grid)."""
    done = [r for r in rows if not r.get("error")]
    where = f"; rows in {output}" if output else ""
    if not done:
        return f"nothing trained: every combination failed{where}"
    best = max(done, key=lambda r: r["test_acc"])
    cfg = flat_config(best.get("config", {}))
    seeds = len(cfg.get("seeds") or []) or cfg.get("runs", 1)
    what = f"{best['model']} on {best['dataset']}" + (f" (best of {len(done)} combinations)" if len(done) > 1 else "")
    return (f"trained {what}: test accuracy {100 * best['test_acc']:.1f}% over {seeds} seed(s), "
            f"{best['epoch_seconds_median']:.2f} s per epoch{where}")


def write_results(rows: List[Dict[str, Any]], path: str, args: argparse.Namespace, commit: Optional[str]) -> None:
    meta = {"versions": versions(), "machine": {"node": platform.node(), "processor": platform.processor(),
                                                "python": platform.python_version(),
                                                "huge_pages": huge_pages_active()},
            "commit": commit, "argv": sys.argv[1:], "args": vars(args)}
    atomic_write_text(path, json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(_csv_path(path), buf.getvalue())


def _csv_path(path: str) -> str:
    return path[:-5] + ".csv" if path.endswith(".json") else path + ".csv"


def save_rows(rows: List[Dict[str, Any]], args: argparse.Namespace, commit: Optional[str], console: Console) -> bool:
    """Write the rows so far to ``--output``; where that fails (the folder went away, the disk is full), to a
    file in the temporary folder instead, and say where. Returns whether ``--output`` was written."""
    try:
        write_results(rows, args.output, args, commit)
        return True
    except OSError as err:
        fallback = os.path.join(tempfile.gettempdir(), f"beltrami-bench-{os.getpid()}.json")
        write_results(rows, fallback, args, commit)
        console.print(f"[red]could not write {args.output}[/red] ({err}); the rows are in {fallback}")
        return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.output is None and not args.no_output and not args.summary_only:
        args.output = time.strftime("beltrami-bench-%Y%m%d-%H%M%S.json")
    check_args(parser, args)
    if args.allocator == "huge-pages":  # from the command line: start again with the variable set
        ensure_huge_pages(relaunch=argv is None)
    commit = git_commit()
    console = Console()
    try:
        names = _names(args.dataset)
    except ValueError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    datasets = summary_table(names, args, console)
    if args.summary_only:
        return 0
    if not datasets:
        console.print("[red]no dataset could be loaded[/red]")
        return 1
    written = True

    def finished(rows: List[Dict[str, Any]]) -> None:  # after every row: a stop keeps the rows before it
        nonlocal written
        if args.output:
            written = save_rows(rows, args, commit, console)

    rows = run_grid(datasets, args, console, finished)
    console.print(results_table(rows))
    console.print(closing_line(rows, args.output if written else None), soft_wrap=True)
    return 0 if written and any(not r.get("error") for r in rows) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
