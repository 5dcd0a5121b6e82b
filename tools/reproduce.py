"""Reproduce the paper's Tables 2 (Planetoid split) and 3 (random splits) and write docs/results.md.

    python tools/reproduce.py --table 2 --datasets cora,citeseer --models blend --seeds 10     # run, then write
    python tools/reproduce.py --from-json results/*.json                                     # write only
    python tools/reproduce.py ... --seeds 4 --first-seed 6 --results-dir part/                # more seeds
    python tools/reproduce.py --merge row.json part/row.json --into row.json                 # one row again
    python tools/reproduce.py --table 2 --split runner --datasets citeseer --models blend    # official protocol

Table 2 rows use Planetoid's public split, as the paper's text says; ``--split runner`` runs them instead as the
official runner does with its tuned Cora and CiteSeer options: on the largest connected component, each
seed on its own random split (``split="runner"``); ``--split fixed`` on the one split the official loader draws
(seed 12345) before the runner replaces it.

Every run is saved as JSON (``--results-dir``, one file per table x dataset x model x preset; while it runs,
the seeds finished so far are in ``<file>.partial``, which a run stopped part-way leaves behind); the markdown
is generated from those files, never typed: our mean ± std next to the paper's value, the difference,
seconds per epoch, NFE, and the command that produced the row. Datasets whose files are absent are listed
with the command that fills them in. The scale section tabulates the ``beltrami-bench`` files on the
ogbn-arxiv-sized graph under ``<results-dir>/scale`` (CPU) and ``<results-dir>/gpu``.
"""
import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import beltrami
from beltrami.allocator import ALLOCATORS, ensure_huge_pages
from beltrami.atomic import atomic_write_text
from beltrami.datasets import DatasetFileError
from beltrami.training import FitResult
from beltrami.training.sections import flat_config

# Test accuracy (mean, std) from the paper: Table 2 (Planetoid splits) and Table 3 (random splits).
PAPER = {
    2: {"blend": {"cora": (84.2, 0.6), "citeseer": (74.4, 0.7), "pubmed": (80.7, 0.7)},
        "blend-knn": {"cora": (83.1, 0.8), "citeseer": (73.3, 0.9), "pubmed": (81.5, 0.5)},
        "gcn": {"cora": (81.9, 0.8), "citeseer": (69.5, 0.9), "pubmed": (79.0, 0.5)},
        "gat": {"cora": (82.8, 0.5), "citeseer": (71.0, 0.6), "pubmed": (77.0, 1.3)}},
    3: {"blend": {"cora": (84.8, 0.9), "citeseer": (75.9, 1.3), "pubmed": (79.5, 1.4), "coauthor-cs": (92.9, 0.2),
                  "computers": (86.9, 0.6), "photo": (92.9, 0.6), "ogbn-arxiv": (72.56, 0.1)},
        "blend-knn": {"cora": (82.5, 0.9), "citeseer": (73.4, 0.5), "pubmed": (80.9, 0.7),
                      "coauthor-cs": (92.3, 0.1), "computers": (86.7, 0.6), "photo": (93.5, 0.3)},
        "gcn": {"cora": (81.5, 1.3), "citeseer": (71.9, 1.9), "pubmed": (77.8, 2.9), "coauthor-cs": (91.1, 0.5),
                "computers": (82.6, 2.4), "photo": (91.2, 1.2), "ogbn-arxiv": (71.74, 0.29)},
        "gat": {"cora": (81.8, 1.3), "citeseer": (71.4, 1.9), "pubmed": (78.7, 2.3), "coauthor-cs": (90.5, 0.6),
                "computers": (78.0, 1.9), "photo": (85.7, 2.0), "ogbn-arxiv": (73.01, 0.19)}},
}
SPLITS = {2: ("public", "fixed", "runner"), 3: ("random",)}  # each table's splits, its default first


def command(table: int, dataset: str, model: str, preset: str, seeds: int, device: str = "cpu",
            first_seed: int = 0, split: Optional[str] = None) -> str:
    return (f"python tools/reproduce.py --table {table} --datasets {dataset} --models {model} --preset {preset} "
            f"--seeds {seeds}" + ("" if first_seed == 0 else f" --first-seed {first_seed}")
            + ("" if split in (None, SPLITS[table][0]) else f" --split {split}")
            + ("" if device == "cpu" else f" --device {device}"))


def run(args) -> List[Path]:
    out_dir = Path(args.results_dir)
    split = args.split or SPLITS[args.table][0]
    suffix = "" if split == SPLITS[args.table][0] else f"-{split}"
    written = []
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            path = out_dir / f"table{args.table}-{dataset}-{model}-{args.preset}{suffix}.json"
            extras = {"table": args.table, "command": command(args.table, dataset, model, args.preset, args.seeds,
                                                              args.device, args.first_seed, split)}
            # fit rewrites ``partial`` after every seed: a run stopped part-way keeps the seeds it finished
            # there, and a finished result it would have replaced stays in place
            partial = path.with_name(path.name + ".partial")
            try:
                beltrami.fit(dataset, preset=args.preset, model=model, split=split,
                             seeds=list(range(args.first_seed, args.first_seed + args.seeds)), root=args.root,
                             device=args.device,
                             keep_freed_memory=args.allocator == "keep-freed",
                             pool_memory=args.allocator == "pooled", extras=extras, output=str(partial))
            except DatasetFileError as err:
                print(f"{dataset}: files missing ({err})", file=sys.stderr)
                continue
            os.replace(partial, path)
            written.append(path)
    return written


def merge(paths: List[Path], into: Path) -> Path:
    """Write the result of several runs of one row on disjoint seeds (``FitResult.merge``) to ``into``; its
    command becomes the one that runs all of those seeds at once."""
    res = FitResult.merge([FitResult.load(p) for p in paths])
    extras = res.config["run"]["extras"]  # a merged result's config is grouped
    seeds = res.config["run"]["seeds"]
    if "command" in extras and seeds == list(range(len(seeds))):
        extras["command"] = re.sub(r" --first-seed \d+", "", re.sub(r"--seeds \d+", f"--seeds {len(seeds)}",
                                                                    extras["command"]))
    res.save(into)
    return into


def scale_table(results_dir: Path) -> List[str]:
    """One row per training run in the beltrami-bench files on synthetic-arxiv, CPU and GPU."""
    out = []
    for path in sorted(results_dir.glob("scale/arxiv-*.json")) + sorted(results_dir.glob("gpu/arxiv-*.json")):
        data = json.loads(path.read_text())
        meta = data.get("meta", {})
        device = meta.get("args", {}).get("device", "cpu")
        where = f"{device}, torch {meta.get('versions', {}).get('torch', '?')}"
        allocator = meta.get("args", {}).get("allocator", "system")
        cmd = "beltrami-bench " + " ".join(Path(a).name if a.startswith("/") else a for a in meta.get("argv", []))
        for r in data.get("rows", []):
            if r.get("error") or r.get("seconds_per_epoch") is None:
                continue
            median = r.get("seconds_per_epoch_median")
            mode = r["compile"] + (f", {r['sparse_backend']} kernel" if r.get("sparse_backend") else "")
            mode += f", {allocator}" if allocator != "system" else ""
            out.append(f"| {r['model']} | {r['scheme']} | {r['backprop']} | {mode} | {where} | "
                       f"{r['seconds_per_epoch']:.3f} | {'—' if median is None else f'{median:.3f}'} | "
                       f"{r['peak_memory_MB']:.0f} | {r['nfe_forward']:.0f}/{r['nfe_backward']:.0f} | "
                       f"{r.get('num_parameters', '—')} | {path.parent.name}/{path.name} | `{cmd}` |")
    if not out:
        return []
    return ["## Scale: the ogbn-arxiv-sized synthetic graph (169,343 nodes)", "",
            "Seconds per epoch are the mean over the run's epochs (the first includes warm-up: CUDA context, "
            "torch.compile) and the median; peak memory is the process's RSS on the CPU and the CUDA "
            "allocator's peak on the GPU. Files under `scale/` ran on this 2-core machine, files under `gpu/` on "
            "the GPU machine (one H200 and 16 CPU cores; its `cpu` rows used those cores).", "",
            "| model | scheme | backprop | compile | device | s/epoch | median | peak MB | NFE fwd/bwd | parameters "
            "| file | command |", "|---|---|---|---|---|---|---|---|---|---|---|---|"] + out + [""]


def result_files(results_dir: Path) -> List[Path]:
    """The rows' result files of a results folder (``table2-*.json``, ``table3-*.json``): it holds other
    measurements too (``official-vs-beltrami-*.json``), which are no fit results."""
    return sorted(p for table in (2, 3) for p in results_dir.glob(f"table{table}-*.json"))


def official_runs(results_dir: Path) -> Dict[Tuple[str, str, str], List[float]]:
    """Test accuracies (%) of the official code's own runs per (dataset, split, model), from the
    ``official-code-*.json`` files of ``tools/compare_official.py --programs official`` (runs recorded before it
    took ``--split`` ran its runner's per-seed splits, ``runner``; before ``--model``, BLEND)."""
    out: Dict[Tuple[str, str, str], List[float]] = {}
    for path in sorted(results_dir.glob("official-code-*.json")):
        for r in json.loads(path.read_text())["runs"]:
            if r["program"] == "official":
                key = (r["dataset"], r.get("split", "runner"), r.get("model", "blend"))
                out.setdefault(key, []).append(100 * r["test_acc"])
    return out


# which of the official code's runs stand beside a row of each split: beside Table 3's random splits, the
# runner's, its nearest protocol (a random split of the largest component per seed, the development set redrawn)
OFFICIAL_SPLIT = {None: "public", "public": "public", "fixed": "fixed", "runner": "runner", "random": "runner"}


def _mean_std(values: List[float]) -> str:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {std:.1f} ({len(values)})"


def markdown(paths: List[Path], results_dir: Path = Path("docs/results")) -> str:
    rows: Dict[int, List[str]] = {2: [], 3: []}
    official = official_runs(results_dir)
    for path in sorted(paths):
        res = FitResult.load(path)
        cfg = flat_config(res.config)  # grouped, or flat in files written before the sections
        extras = cfg.get("extras", {})
        table = int(extras.get("table", 2 if cfg.get("split") in (None, "public") else 3))
        paper = PAPER.get(table, {}).get(res.model, {}).get(res.dataset)
        ours = f"{100 * res.test_acc:.1f} ± {100 * res.test_acc_std:.1f}"
        ref = f"{paper[0]} ± {paper[1]}" if paper else "—"
        diff = f"{round(100 * res.test_acc - paper[0], 1) + 0.0:+.1f}" if paper else "—"  # + 0.0: no "-0.0"
        name = res.model
        nfe = f"{res.nfe_forward:.0f}/{res.nfe_backward:.0f}" if res.nfe_forward else "—"
        tags = []
        if res.model in ("blend", "blend-knn"):
            tags.append("frozen" if cfg.get("frozen") else "time-dependent")
        if res.model == "blend-knn" and cfg.get("rewire_symmetric", True):
            tags.append("symmetric graph")  # every reverse edge added to the official GDC graph (one direction)
        split = cfg.get("split")
        if split in ("fixed", "runner"):
            tags.append(f"{split} split")
        if res.model in ("blend", "blend-knn") and cfg.get("scheme") not in (None, "dopri5"):
            tags.append(f"{cfg['scheme']} step {cfg.get('step_size'):g}")  # the paper presets integrate with dopri5
        if tags:
            name += f" ({', '.join(tags)})"
        key = (res.dataset, OFFICIAL_SPLIT.get(split), res.model)
        theirs = _mean_std(official[key]) if cfg.get("frozen") and key in official else "—"
        rows[table].append(f"| {res.dataset} | {name} | {ours} | {ref} | {theirs} | {diff} | {len(res.runs)} | "
                           f"{res.seconds_per_epoch:.2f} | {nfe} | "
                           f"`{extras.get('command', path.name)}` |")
    head = ("| dataset | model | ours | paper | official code, run here (seeds) | diff | seeds | s/epoch | NFE fwd/bwd "
            "| command |\n|---|---|---|---|---|---|---|---|---|---|")
    text = ["# Results", "", "Generated by `tools/reproduce.py` from the result JSON files; do not edit by hand.", ""]
    notes = {2: ["Rows marked *runner split* ran as the official BLEND runner runs its tuned Cora and CiteSeer "
                 "options: on the largest connected component, each seed on its own random split (20 training "
                 "nodes per class from 1,500 development nodes, drawn with seed `numpy.random.RandomState(seed)"
                 ".randint(1000)`; `split=\"runner\"`). Rows marked *fixed split* ran on the one split the official "
                 "loader draws (seed 12345) before its runner replaces it (`split=\"fixed\"`). The other rows use "
                 "Planetoid's public split, as the paper's text says. The official code's own runs, seeded alike, "
                 "on the same split as the row are in the column beside the paper's (`tools/compare_official.py "
                 "--programs official --split runner|fixed|public`). diff is ours minus the paper's.", ""],
             3: ["These rows keep one development set (DIGL's fixed development seed) and draw the training nodes "
                 "per seed. The official code column: its runner's own runs (`--split runner`), whose random "
                 "splits of the largest component redraw the development set with each seed.", ""]}
    for table, title in ((2, "Table 2: Planetoid public split"), (3, "Table 3: random splits (LCC)")):
        text += [f"## {title}", ""] + notes[table] + [head] + (rows[table] or ["| (no runs yet) ||||||||||"]) + [""]
    text += scale_table(results_dir)
    text += ["## Datasets not run here", "",
             "PubMed lacks `ind.pubmed.allx`; Computers, Photo, Coauthor CS and ogbn-arxiv's edges/features are "
             "absent from the shared data. With internet: `python tools/fetch_data.py --root DATA`, then the "
             "commands above with `--datasets pubmed,computers,photo,coauthor-cs,ogbn-arxiv`.", ""]
    return "\n".join(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", type=int, choices=(2, 3), default=2)
    p.add_argument("--datasets", default="cora,citeseer")
    p.add_argument("--models", default="blend")
    p.add_argument("--preset", default="paper", choices=("fast", "paper", "paper-beltrami"))
    p.add_argument("--split", default=None, choices=sorted({s for splits in SPLITS.values() for s in splits}),
                   help="Table 2: public (default), runner (the official runner's per-seed splits of the "
                        "largest component) or fixed (its loader's one split); Table 3: random (default)")
    p.add_argument("--seeds", type=int, default=10, help="number of seeds (default 10)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds run from this one (default 0)")
    p.add_argument("--root", default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda (recorded in each result's config)")
    p.add_argument("--allocator", default="system", choices=ALLOCATORS,
                   help="CPU memory: the system's (default), pooled (faster; needs the C++ kernels), keep-freed "
                        "(faster, more memory) or huge-pages (the command starts again with "
                        "THP_MEM_ALLOC_ENABLE=1); see beltrami.allocator")
    p.add_argument("--results-dir", default="docs/results")
    p.add_argument("--from-json", nargs="*", default=None, help="only write the markdown from these files")
    p.add_argument("--markdown", default="docs/results.md")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="merge these results of one row on disjoint seeds into --into, then write the markdown")
    p.add_argument("--into", default=None, help="where --merge writes (e.g. the row's file in --results-dir)")
    args = p.parse_args(argv)
    if args.allocator == "huge-pages":  # from the command line: start again with the variable set
        ensure_huge_pages(relaunch=argv is None)
    if args.split is not None and args.split not in SPLITS[args.table]:
        p.error(f"--split {args.split} does not belong to Table {args.table} (choose from "
                f"{', '.join(SPLITS[args.table])})")
    if args.from_json == []:  # an empty list would rewrite the markdown with empty tables
        p.error("--from-json needs the result files to tabulate, e.g. --from-json docs/results/*.json")
    if args.merge is not None:
        if args.into is None:
            p.error("--merge needs --into")
        merge([Path(x) for x in args.merge], Path(args.into))
        args.from_json = [str(x) for x in result_files(Path(args.results_dir))]
    paths = [Path(x) for x in args.from_json] if args.from_json is not None else run(args)
    if args.from_json is not None or paths:
        all_paths = paths if args.from_json is not None else result_files(Path(args.results_dir))
        atomic_write_text(args.markdown, markdown(all_paths, Path(args.results_dir)))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
