"""beltrami's BLEND against the official code's model, number by number, with the same weights.

    python tools/equivalence.py --official-src ~/graph-neural-pde/src --official-python ~/venv/bin/python \\
        --datasets cora,citeseer --flows frozen,beltrami --output docs/results/equivalence-DATE.json \\
        --markdown docs/results/equivalence.md

For each dataset and flow, ``tools/official_probe.py`` builds the official model (research code of *Beltrami
Flow and Neural Diffusion on Graphs*; tuned values, dropout off, float64 by default) and saves its data,
weights and intermediate quantities. Here the same preset is built through :func:`beltrami.fit`'s own
path (``paper`` for the frozen flow, ``paper-beltrami`` for the recomputed one), the official weights are
copied in by role (the official ``z`` is ``[features, positions]``, ours ``[positions, features]``; its
``Q``/``K`` are our ``W_K``/``W_Q``), the official split is used, and every quantity is compared: the
features, the positional encoding, z(0), the attention at z(0) (edge by edge), f(0, z(0)), z(T), the
logits, the loss, each parameter's gradient, and one evaluation pass.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

OFFICIAL_NAME = {"cora": "Cora", "citeseer": "Citeseer"}
OFFICIAL_FLOW = {"frozen": ["--block", "attention"], "beltrami": ["--block", "constant", "--function", "transformer"]}
PRESET = {"frozen": "paper", "beltrami": "paper-beltrami"}
# CiteSeer's tuned values name no positional encoding; the official default needs a file it does not ship
EXTRA = {"citeseer": ["--pos_enc_type", "GDC"]}


def run_official(args, dataset: str, flow: str, out: Path) -> Dict:
    cmd = [args.official_python, str(Path(__file__).resolve().parent / "official_probe.py"), str(out),
           "--seed", str(args.seed), "--dtype", args.dtype, "--train-epochs", str(args.train_epochs),
           *(["--tol-scale", str(args.tol_scale)] if args.tol_scale else []), "--", "--dataset", OFFICIAL_NAME[dataset],
           "--beltrami", *OFFICIAL_FLOW[flow], *EXTRA.get(dataset, [])]
    proc = subprocess.run(cmd, cwd=args.official_src, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise RuntimeError(f"official probe failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return torch.load(out, weights_only=False)


def ours(dataset: str, flow: str, off: Dict, dtype: torch.dtype, seed: int):
    """Our dataset (``split="runner"``), coordinates and model for ``dataset``'s preset, dropout off; the
    number of nodes whose split differs from the official one (the official masks are used if any)."""
    import dataclasses

    from beltrami.training.config import FitConfig
    from beltrami.training.data import as_dataset
    from beltrami.training.fit import build_model
    from beltrami.training.positional import positional_coordinates, rewired_graph

    tol = off["tol_scale"]  # the tuned one, or the one the probe was given
    cfg = FitConfig.build(dataset, PRESET[flow], split="runner", input_dropout=0.0, dropout=0.0, progress=False,
                          atol=tol * 1e-7, rtol=tol * 1e-9)
    ds = as_dataset(dataset, cfg, seed)
    # the official masks also hold nodes without a label (CiteSeer's, read as class 0); ours never do
    theirs = [m & (ds.y >= 0) for m in off["masks"]]
    moved = sum(int((a != b).sum()) for a, b in zip((ds.train_mask, ds.val_mask, ds.test_mask), theirs))
    if moved:
        ds = dataclasses.replace(ds, train_mask=theirs[0], val_mask=theirs[1], test_mask=theirs[2])
    pos = positional_coordinates(cfg, ds)
    model = build_model(cfg, ds, rewired_graph(cfg, ds, pos), pos).to(dtype)
    pos = None if pos is None else (pos.to_dense() if pos.layout != torch.strided else pos).to(dtype)
    return cfg, ds, pos, model, moved


def weight_map(model, feat: int, pos_dim: int, flow: str) -> List[Tuple[str, str, Callable]]:
    """(our name, official name, official layout -> ours) for every parameter."""
    perm = torch.cat([torch.arange(feat, feat + pos_dim), torch.arange(feat)])  # our z column -> official column
    cols = lambda t: t[:, perm]  # noqa: E731  (a weight reading z)
    same = lambda t: t  # noqa: E731
    att = "odeblock.multihead_att_layer" if flow == "frozen" else "odeblock.odefunc.multihead_att_layer"
    a = model.function.attention
    rows = [("feature_encoder.lin.weight", "mx.weight", same), ("feature_encoder.lin.bias", "mx.bias", same),
            ("pos_encoder.weight", "mp.weight", lambda t: t.t()), ("pos_encoder.bias", "mp.bias", same),
            ("decoder.weight", "m2.weight", cols), ("decoder.bias", "m2.bias", same),
            ("function.beta_train", "odeblock.odefunc.beta_train", lambda t: t.reshape(())),
            ("function.alpha_train", "odeblock.odefunc.alpha_train", lambda t: torch.stack([t.reshape(()), t.new_zeros(())]))]
    if a.kind == "exp_product":
        rows += [(f"function.attention.{o}.{w}", f"{att}.{p}.{w}", same) for o, p in
                 (("W_K", "Qx"), ("W_Q", "Kx"), ("W_Kp", "Qp"), ("W_Qp", "Kp")) for w in ("weight", "bias")]
        rows += [(f"function.attention.{o}", f"{att}.{p}", lambda t: t.reshape(())) for o, p in
                 (("output_var", "output_var_x"), ("lengthscale", "lengthscale_x"), ("output_var_p", "output_var_p"),
                  ("lengthscale_p", "lengthscale_p"))]
    else:
        rows += [(f"function.attention.{o}.weight", f"{att}.{p}.weight", cols) for o, p in (("W_K", "Q"), ("W_Q", "K"))]
        rows += [(f"function.attention.{o}.bias", f"{att}.{p}.bias", same) for o, p in (("W_K", "Q"), ("W_Q", "K"))]
    return rows


def diff(a: torch.Tensor, b: torch.Tensor) -> Dict[str, float]:
    a, b = a.detach().double(), b.detach().double()
    if a.shape != b.shape:
        return {"max_abs": float("inf"), "max_rel": float("inf"), "note": f"shapes {tuple(a.shape)} vs {tuple(b.shape)}"}
    d = (a - b).abs().max().item() if a.numel() else 0.0
    return {"max_abs": d, "max_rel": d / max(b.abs().max().item(), 1e-300)}


def compare(dataset: str, flow: str, off: Dict, dtype: torch.dtype, seed: int) -> Dict[str, Dict]:
    from beltrami.training.fit import evaluate

    cfg, ds, pos, model, moved = ours(dataset, flow, off, dtype, seed)
    feat, pos_dim = model.hidden_features, model.hidden_pos
    to_ours = lambda z: torch.cat([z[:, feat:], z[:, :feat]], dim=1)  # noqa: E731  official z columns -> ours
    unlabelled = sum(int((m & (ds.y < 0)).sum()) for m in off["masks"])
    rows = {"split (labelled nodes whose mask differs)": {"max_abs": float(moved), "max_rel": float(moved) / ds.num_nodes,
                                                          "note": f"official masks hold {unlabelled} unlabelled nodes"},
            "features x": diff(ds.x.to(dtype), off["x"]), "labels y": diff(ds.y, off["y"]),
            "positional encoding": diff(pos, off["pos"])}
    mapping = weight_map(model, feat, pos_dim, flow)
    with torch.no_grad():
        state = model.state_dict()
        for mine, theirs, fn in mapping:
            state[mine].copy_(fn(off["params"][theirs]))
    x, fn = ds.x.to(dtype), model.function
    model.train()
    with torch.no_grad():
        z0 = model.encode(x, pos)
        rows["z(0)"] = diff(z0, to_ours(off["z0"]))
        if hasattr(fn, "set_initial"):
            fn.set_initial(z0)
        else:
            fn.z0 = z0
        rows["attention at z(0), edge by edge"] = attention_diff(fn, z0, off, ds.num_nodes)
        rows["f(0, z(0))"] = diff(fn(torch.zeros(()), z0), to_ours(off["f0"]))
        rows["z(T)"] = diff(model._solve(z0, model.time).z, to_ours(off["zT"]))
    model.zero_grad()
    logits = model(x, pos)
    # the loss as the official code computes it, on its training mask and labels (CiteSeer's unlabelled
    # nodes count there as class 0): so that the gradients compare the models, not the splits
    train = off["masks"][0]
    loss = F.cross_entropy(logits[train], off["y"][train])
    loss.backward()
    rows["logits"] = diff(logits, off["logits"])
    rows["loss"] = diff(loss, torch.tensor(off["loss"]))
    params = dict(model.named_parameters())
    for mine, theirs, fn_map in mapping:
        if theirs in off["grads"]:
            rows[f"grad {mine}"] = diff(params[mine].grad, fn_map(off["grads"][theirs]))
    rows["evaluation"] = evaluation_rows(cfg, model, ds, x, pos, off["evaluation"], evaluate)
    return rows


def attention_diff(fn, z0, off: Dict, n: int) -> Dict[str, float]:
    """Our attention values against the official ones, matched by (row, column): official edges are
    ``(edge_index[0], edge_index[1])`` with ``out[edge_index[0]] += a x[edge_index[1]]``."""
    values = fn.attention_values(z0)
    ours_key = fn.row * n + fn.col
    ei = off["edge_index"]
    theirs_key = ei[0] * n + ei[1]
    o1, o2 = torch.argsort(ours_key), torch.argsort(theirs_key)
    if not torch.equal(ours_key[o1], theirs_key[o2]):
        return {"max_abs": float("inf"), "max_rel": float("inf"),
                "note": f"edge sets differ: {ours_key.numel()} vs {theirs_key.numel()} edges"}
    return diff(values[o1], off["attention"].mean(dim=1)[o2])


def evaluation_rows(cfg, model, ds, x, pos, ev: Dict, evaluate) -> Dict:
    """Official: accuracies at each accepted step up to 3T and the one kept; ours: the time selection, and
    our model read at the official kept time."""
    tr, va, te, t = evaluate(cfg, model, ds, x, pos)
    with torch.no_grad():
        at = lambda ts: [a.tolist() for a in _accs(model.forward_times(x, pos, ts), ds)]  # noqa: E731
        # a rejected step is scored again at the same time: each accepted step once
        accepted = [s for i, s in enumerate(ev["steps"]) if i == 0 or s[0] > ev["steps"][i - 1][0]]
        steps = [s[0] for s in accepted]
        ours_at_steps = at(steps) if steps else []
    worst = max((abs(o[1] - s[2]) for o, s in zip(ours_at_steps, accepted)), default=0.0)
    return {"official": {"kept_time": ev["best_time"], "val": ev["best_val"], "test": ev["best_test"],
                         "steps": len(steps)},
            "ours": {"kept_time": t, "val": va, "test": te},
            "max_abs": worst, "note": "max |val acc difference| at the official accepted steps"}


def _accs(logits, ds):
    hit = (logits.argmax(-1) == ds.y).double()
    return torch.stack([hit[..., m].mean(-1) for m in (ds.train_mask, ds.val_mask, ds.test_mask)], dim=-1)


def markdown(results: Dict[str, Dict]) -> str:
    lines = []
    for key, rows in results.items():
        lines += [f"### {key}", "", "| quantity | max abs difference | relative to the official's largest |",
                  "|---|---|---|"]
        for name, r in rows.items():
            if name == "evaluation":
                continue
            note = f" ({r['note']})" if "note" in r else ""
            lines.append(f"| {name} | {r['max_abs']:.2e} | {r['max_rel']:.2e}{note} |")
        ev = rows["evaluation"]
        o, m = ev["official"], ev["ours"]
        lines += ["", f"Evaluation pass: official keeps t = {o['kept_time']:.3f} of {o['steps']} accepted steps "
                  f"(val {o['val']:.4f}, test {o['test']:.4f}); ours keeps t = {m['kept_time']:.3f} of the "
                  f"evenly spaced points (val {m['val']:.4f}, test {m['test']:.4f}); {ev['note']}: "
                  f"{ev['max_abs']:.4f}.", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official-src", required=True, help="the official code's folder holding run_GNN.py")
    p.add_argument("--official-python", required=True, help="a Python that runs the official code")
    p.add_argument("--datasets", default="cora,citeseer")
    p.add_argument("--flows", default="frozen,beltrami", help="frozen (paper), beltrami (paper-beltrami)")
    p.add_argument("--seed", type=int, default=0, help="the official runner's seed (initial weights, split)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--train-epochs", type=int, default=0,
                   help="train the official model this many epochs (its own step) before the comparison")
    p.add_argument("--tol-scale", type=float, default=None, help="both solvers at atol 1e-7 s, rtol 1e-9 s "
                   "instead of the tuned tolerances")
    p.add_argument("--output", default=None, help="JSON with every comparison")
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    for name, values, allowed in (("--datasets", args.datasets, OFFICIAL_NAME), ("--flows", args.flows, PRESET)):
        bad = [v for v in values.split(",") if v not in allowed]
        if bad:
            p.error(f"{name}: {', '.join(bad)} not among {', '.join(allowed)}")
    if not (Path(args.official_src) / "run_GNN.py").is_file():
        p.error(f"--official-src: no run_GNN.py in {args.official_src}")
    from beltrami.atomic import atomic_write_text
    from beltrami.training.result import git_commit

    commit = git_commit() or "unknown"  # the code this process imports, read before it runs
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets.split(","):
            for flow in args.flows.split(","):
                off = run_official(args, dataset, flow, Path(tmp) / f"{dataset}-{flow}.pt")
                key = (f"{dataset}, {flow}: split seed {off['split_seed']}, {args.dtype}, after "
                       f"{args.train_epochs} official epochs, tol_scale {off['tol_scale']:g}")
                results[key] = compare(dataset, flow, off, getattr(torch, args.dtype), args.seed)
                print(markdown({key: results[key]}), flush=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "commit": commit, "argv": sys.argv[1:]}
    if args.output:
        atomic_write_text(args.output, json.dumps({"meta": meta, "results": results}, indent=1))
    if args.markdown:
        head = (f"# BLEND against the official code, same weights\n\n{meta['date']}, beltrami at {commit[:10]}; "
                f"generated by `python tools/equivalence.py` (see its docstring).\n\n")
        atomic_write_text(args.markdown, head + markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
