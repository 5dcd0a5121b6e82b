"""beltrami against the official BLEND code on the same machine, runs alternated, as one table.

    python tools/compare_official.py --official-src ~/graph-neural-pde/src --official-python ~/venv/bin/python \\
        --datasets cora,citeseer --seeds 0,1 --output docs/results/official-vs-beltrami-DATE.json \\
        --markdown docs/results/official-vs-beltrami.md

The official code is the research code of *Beltrami Flow and Neural Diffusion on Graphs* (NeurIPS 2021),
``twitter-research/graph-neural-pde``; give the folder holding its ``run_GNN.py`` (with the Planetoid files
where its loader looks) and a Python that runs it. Each round runs, per dataset and seed, the official
runner and then ``beltrami-bench`` on the same tuned values, the same split and the same number of epochs; the
order of the two programs alternates from round to round, because this kind of machine drifts by a third within
minutes. The official runner never seeds; here each of its runs is seeded like ours (python, numpy, torch).

``--split`` picks the split both programs use (``SPLIT_ARGS``): ``runner`` (default) is what the official
runner does with its tuned values, one random split of the largest component per seed; ``fixed`` keeps the one
split its loader draws (seed 12345) by passing ``--planetoid_split``, which stops the runner from replacing it;
``public`` is Planetoid's public split on the whole graph (``--planetoid_split --not_lcc``).
``--model blend-knn`` runs the official runner with its tuned values' ``rewiring`` set to ``gdc`` (DIGL's top-k
PPR graph, which the paper names for BLEND-kNN) against ours with ``--model blend-knn``; ``blend-knn-dynamic``
sets ``rewire_KNN`` instead (each node's 64 nearest in the encoder's output, itself among them, rebuilt every
``rewire_KNN_epoch`` epochs; the official runner needs ``pykeops`` for it) and runs the official code only.

Recorded per run: median epoch (training step and evaluation: the official log's ``Runtime``; ours
``epoch_seconds_median``), the whole process's wall time (start-up included) and peak resident memory (of
that process, from ``wait4``), test accuracy, and forward evaluations per epoch (official: training and
evaluation together, as its log counts them; ours: training forward).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

# official runner arguments per dataset: its tuned values need --block attention (argparse's default
# overrides them) and CiteSeer's name no positional encoding (the default needs a file it does not ship)
OFFICIAL_ARGS = {"cora": ["--dataset", "Cora", "--beltrami", "--block", "attention"],
                 "citeseer": ["--dataset", "Citeseer", "--beltrami", "--block", "attention", "--pos_enc_type", "GDC"]}
# the official runner's flags that give each of our splits (see the module docstring)
SPLIT_ARGS = {"runner": [], "fixed": ["--planetoid_split"], "public": ["--planetoid_split", "--not_lcc"]}
EPOCHS = {"cora": 100, "citeseer": 250}  # the tuned values; the official --epoch N trains N - 1 epochs
# the runner with its seeds set (it sets none). BLEND-kNN is the official runner with its tuned values' rewiring
# switched on: "gdc" (DIGL's top-k PPR graph, which the paper names for BLEND-kNN) or rewire_KNN (a kNN graph
# of the encoder's output, rebuilt every rewire_KNN_epoch epochs). Its own --rewiring and --rewire_KNN flags
# are overwritten by the tuned values (None and False for every dataset), and merge_cmd_args restores neither
SEEDED = """
import random, runpy, sys, numpy, torch
seed, model = int(sys.argv[1]), sys.argv[2]
random.seed(seed); numpy.random.seed(seed); torch.manual_seed(seed)
sys.path.insert(0, '.')
if model != 'blend':
    import best_params
    for values in best_params.best_params_dict.values():
        values.update({'blend-knn': {'rewiring': 'gdc'}, 'blend-knn-dynamic': {'rewire_KNN': True}}[model])
sys.argv = ['run_GNN.py'] + sys.argv[3:]
runpy.run_path('run_GNN.py', run_name='__main__')
"""
MODELS = ("blend", "blend-knn", "blend-knn-dynamic")


def run_measured(cmd: List[str], cwd: str) -> Dict[str, object]:
    """Run ``cmd``; its output, wall time and peak resident memory (MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{out[-3000:]}")
    return {"output": out, "wall_seconds": wall, "peak_MB": usage.ru_maxrss / 1024}


def drop_cached_encoding(args, dataset: str) -> None:
    """Remove the official code's cached positional encoding of ``dataset``: it is stored under the
    dataset's name alone (``data/pos_encodings/<Dataset>_GDC.pkl`` beside ``src/``) and loaded on any graph,
    so a run on the whole graph after one on the largest component would read the wrong rows (it fails on
    the size mismatch). Each run computes its own; the exact PPR of these graphs takes seconds."""
    name = OFFICIAL_ARGS[dataset][OFFICIAL_ARGS[dataset].index("--dataset") + 1]
    (Path(args.official_src).resolve().parent / "data" / "pos_encodings" / f"{name}_GDC.pkl").unlink(missing_ok=True)


def official(args, dataset: str, seed: int) -> Dict[str, object]:
    drop_cached_encoding(args, dataset)
    cmd = [args.official_python, "-c", SEEDED, str(seed), args.model,
           *OFFICIAL_ARGS[dataset], *SPLIT_ARGS[args.split],
           "--epoch", str((args.epochs or EPOCHS[dataset]) + 1)]
    res = run_measured(cmd, args.official_src)
    text = res.pop("output")
    epochs = re.findall(r"Epoch: \d+, Runtime ([\d.]+), Loss [\d.]+, forward nfe (\d+)", text)
    final = re.search(r"best val accuracy ([\d.]+) with test accuracy ([\d.]+)", text)
    if not epochs or final is None:
        raise RuntimeError(f"no epoch lines in the official log:\n{text[-2000:]}")
    runtimes, cumulative = [float(e[0]) for e in epochs], [int(e[1]) for e in epochs]
    nfe = [b - a for a, b in zip(cumulative, cumulative[1:])]
    return {**res, "program": "official", "epochs": len(epochs), "epoch_seconds_median": statistics.median(runtimes),
            "test_acc": float(final.group(2)), "nfe_forward": statistics.median(nfe) if nfe else cumulative[0]}


def ours(args, dataset: str, seed: int) -> Dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        cmd = [sys.executable, "-m", "beltrami.bench", "--dataset", dataset, "--preset", "paper", "--split", args.split,
               "--model", args.model, "--seed", str(seed), "--output", str(out)]
        cmd += ["--epochs", str(args.epochs)] if args.epochs else []
        res = run_measured(cmd, str(Path(__file__).resolve().parents[1]))
        row = json.loads(out.read_text())["rows"][0]
    res.pop("output")
    if row.get("error"):
        raise RuntimeError(row["error"])
    return {**res, "program": "beltrami", "epochs": args.epochs or EPOCHS[dataset],
            "epoch_seconds_median": row["epoch_seconds_median"], "test_acc": row["test_acc"],
            "nfe_forward": row["nfe_forward"], "startup_seconds": row["startup_seconds"]}


def table(runs: List[Dict[str, object]]) -> str:
    """Markdown: per dataset, each program's medians over its runs, and our speed-up / memory ratio."""
    lines = ["| dataset | program | runs | s/epoch (with evaluation) | whole run, s | peak MB | test acc, mean ± std "
             "(each run) | fwd NFE/epoch |", "|---|---|---|---|---|---|---|---|"]
    ratios = []
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        med = {}
        for program in ("official", "beltrami"):
            rs = [r for r in runs if r["dataset"] == dataset and r["program"] == program]
            if not rs:
                continue
            m = {k: statistics.median(r[k] for r in rs) for k in ("epoch_seconds_median", "wall_seconds", "peak_MB",
                                                                  "nfe_forward")}
            acc = [100 * r["test_acc"] for r in rs]
            std = statistics.stdev(acc) if len(acc) > 1 else 0.0
            med[program] = m
            lines.append(f"| {dataset} | {program} | {len(rs)} | {m['epoch_seconds_median']:.3f} | "
                         f"{m['wall_seconds']:.1f} | {m['peak_MB']:.0f} | "
                         f"{statistics.fmean(acc):.1f} ± {std:.1f} ({', '.join(f'{a:.1f}' for a in acc)}) | "
                         f"{m['nfe_forward']:.0f} |")
        if len(med) == 2:
            o, b = med["official"], med["beltrami"]
            ratios.append(f"- {dataset}: epochs {o['epoch_seconds_median'] / b['epoch_seconds_median']:.1f}x faster, "
                          f"whole run {o['wall_seconds'] / b['wall_seconds']:.1f}x faster, peak memory "
                          f"{b['peak_MB'] / o['peak_MB']:.2f} of the official's")
    return "\n".join(lines + [""] + ratios) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official-src", required=True, help="the official code's folder holding run_GNN.py")
    p.add_argument("--official-python", required=True, help="a Python that runs the official code")
    p.add_argument("--datasets", default="cora,citeseer")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--split", default="runner", choices=sorted(SPLIT_ARGS), help="the split both programs use")
    p.add_argument("--model", default="blend", choices=MODELS,
                   help="blend; blend-knn: the official runner with its tuned rewiring set to gdc (DIGL); "
                        "blend-knn-dynamic: with its tuned rewire_KNN switched on (official code only)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every run (default: the tuned values)")
    p.add_argument("--programs", default="official,beltrami",
                   help="which programs run (accuracy-only sittings may run one; the table then has no ratios)")
    p.add_argument("--output", required=True, help="JSON with every run")
    p.add_argument("--markdown", default=None, help="also write the table here")
    args = p.parse_args(argv)
    if not (Path(args.official_src) / "run_GNN.py").is_file():
        p.error(f"--official-src: no run_GNN.py in {args.official_src}")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in OFFICIAL_ARGS]
    if unknown:
        p.error(f"--datasets: {', '.join(unknown)} not among {', '.join(OFFICIAL_ARGS)}")
    programs = {"official": official, "beltrami": ours}
    chosen = [s.strip() for s in args.programs.split(",") if s.strip()]
    if not chosen or any(c not in programs for c in chosen):
        p.error(f"--programs: {args.programs!r}; allowed: a comma list of {', '.join(programs)}")
    if args.model == "blend-knn-dynamic" and "beltrami" in chosen:
        p.error("--model blend-knn-dynamic runs the official code only: give --programs official")
    from beltrami.atomic import atomic_write_text

    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    command = " ".join(["--official-src OFFICIAL_SRC --official-python OFFICIAL_PYTHON", f"--datasets {args.datasets}",
                        f"--seeds {args.seeds}", f"--split {args.split}", f"--model {args.model}",
                        f"--programs {args.programs}"]
                       + ([f"--epochs {args.epochs}"] if args.epochs else []))
    meta = {"date": time.strftime("%Y-%m-%d"), "commit": commit, "machine": platform.platform(),
            "cpus": os.cpu_count(), "command": command}
    runs: List[Dict[str, object]] = []
    for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
        for dataset in datasets:
            order = [programs[c] for c in chosen]
            for program in (order if i % 2 == 0 else order[::-1]):
                r = {"dataset": dataset, "split": args.split, "model": args.model, "seed": seed,
                     **program(args, dataset, seed)}
                print(json.dumps(r), flush=True)
                runs.append(r)
                # after every run: a failure later keeps what finished
                atomic_write_text(args.output, json.dumps({"meta": meta, "runs": runs}, indent=1))
    text = table(runs)
    print(text)
    if args.markdown:
        head = (f"# beltrami vs the official BLEND code\n\nSame machine ({meta['cpus']} cores), "
                f"{meta['date']}, beltrami at {commit[:10]}, runs alternated; generated by\n"
                f"`python tools/compare_official.py {command} --output ... --markdown ...`.\n\n")
        atomic_write_text(args.markdown, head + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
