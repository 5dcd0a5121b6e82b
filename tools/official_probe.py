"""The official BLEND code's quantities for one model, for ``tools/equivalence.py`` to compare with ours.

Runs with the official code's Python, in the folder holding its ``run_GNN.py`` (research code of *Beltrami
Flow and Neural Diffusion on Graphs*, ``twitter-research/graph-neural-pde``):

    cd OFFICIAL_SRC && OFFICIAL_PYTHON PATH/TO/tools/official_probe.py OUT.pt --seed 0 -- --dataset Cora \\
        --beltrami --block attention

Everything after ``--`` goes to the official runner's own argument parser, and its tuned values are merged
as its ``main`` merges them; the model is built as ``main`` builds it, with input dropout and dropout set to
0 (so that a training-mode forward is deterministic). The split is the one ``main`` trains on: it redraws
the split of the largest component with ``numpy.random.randint(0, 1000)`` after the seeding below, so each
seed has its own split. Written (``torch.save``): the data, the positional encoding, every parameter, and
z(0), the attention at z(0), f(0, z(0)), z(T), the logits, the training loss and every parameter's
gradient, and one evaluation pass (accuracies at every accepted step of the early-stopping integrator up to
``earlystopxT`` T, the step it keeps, and the accuracies at that horizon).
"""
from __future__ import annotations

import argparse
import ast
import random
import sys

import numpy as np
import torch
import torch.nn.functional as F


def official_namespace(runner_args):
    """The runner module's definitions and its parsed, merged options (its ``__main__`` block without the
    final ``main(opt)``, then ``main``'s merge with the tuned values)."""
    tree = ast.parse(open("run_GNN.py").read())
    guard = [n for n in tree.body if isinstance(n, ast.If)][-1]
    ns = {"__name__": "run_GNN"}
    exec(compile(ast.Module(body=[n for n in tree.body if n is not guard], type_ignores=[]), "run_GNN.py", "exec"), ns)
    sys.argv = ["run_GNN.py"] + list(runner_args)
    exec(compile(ast.Module(body=guard.body[:-1], type_ignores=[]), "run_GNN.py", "exec"), ns)
    cmd_opt = ns["opt"]
    opt = {**cmd_opt, **ns["best_params_dict"].get(cmd_opt["dataset"], {})}
    ns["merge_cmd_args"](cmd_opt, opt)
    return ns, opt


def build(ns, opt, seed: int, dtype: torch.dtype):
    """Data, positional encoding and model, in the order (and random draws) of the runner's ``main``."""
    from data import get_dataset, set_train_val_test_split
    from GNN_early import GNNEarly
    from graph_rewiring import apply_beltrami
    from utils import ROOT_DIR

    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    dataset = get_dataset(opt, f"{ROOT_DIR}/data", opt["not_lcc"])
    pos = apply_beltrami(dataset.data, opt)
    opt["pos_enc_dim"] = pos.shape[1]
    model = GNNEarly(opt, dataset, torch.device("cpu"))
    split_seed = None
    if not opt["planetoid_split"] and opt["dataset"] in ("Cora", "Citeseer", "Pubmed"):
        split_seed = int(np.random.randint(0, 1000))
        dataset.data = set_train_val_test_split(split_seed, dataset.data, num_development=1500)
    data = dataset.data
    data.x = data.x.to(dtype)
    return data, pos.to(dtype), model.to(dtype), split_seed


def train(ns, opt, model, data, pos, epochs: int) -> list:
    """``epochs`` of the runner's own training step (tuned dropouts and optimiser); the losses."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = ns["get_optimizer"](opt["optimizer"], params, lr=opt["lr"], weight_decay=opt["decay"])
    return [ns["train"](model, optimizer, data, pos) for _ in range(epochs)]


def attention_block(model):
    """The module holding the attention layer: the block (frozen attention) or the function (recomputed)."""
    block = model.odeblock
    return block if hasattr(block, "multihead_att_layer") else block.odefunc


def probe(model, data, pos, opt):
    out = {}
    block, func = model.odeblock, model.odeblock.odefunc
    with torch.no_grad():
        z0 = model.forward_encoder(data.x, pos)
        block.set_x0(z0)
        att = attention_block(model).multihead_att_layer(z0, func.edge_index)[0]
        func.attention_weights = att
        out.update(z0=z0, attention=att, edge_index=func.edge_index, f0=func(torch.zeros(()), z0))
        model.train()
        out["zT"] = block(z0)
        out["nfe_train"] = func.nfe
        func.nfe = 0
    model.train()
    model.zero_grad()
    logits = model(data.x, pos)
    loss = F.cross_entropy(logits[data.train_mask], data.y[data.train_mask])
    loss.backward()
    out.update(logits=logits.detach(), loss=float(loss))
    out["grads"] = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    out["evaluation"] = evaluation(model, data, pos)
    return out


def evaluation(model, data, pos):
    """One evaluation pass as ``main`` does it: the accuracies at every accepted step of the early-stopping
    integrator, the step it keeps, and the accuracies at its horizon."""
    from early_stop_solver import EarlyStopDopri5

    steps = []
    plain = EarlyStopDopri5.evaluate

    def recording(self, rk_state):
        accs = plain(self, rk_state)
        steps.append((float(rk_state.t1), *accs))
        return accs

    EarlyStopDopri5.evaluate = recording
    try:
        model.eval()
        with torch.no_grad():
            logits = model(data.x, pos)
    finally:
        EarlyStopDopri5.evaluate = plain
    accs = [float((logits[m].argmax(1) == data.y[m]).float().mean()) for m in
            (data.train_mask, data.val_mask, data.test_mask)]
    solver = model.odeblock.test_integrator.solver
    return {"steps": steps, "horizon_accs": accs, "best_val": solver.best_val, "best_test": solver.best_test,
            "best_time": solver.best_time}


def main() -> int:
    argv = sys.argv[1:]
    ours, runner = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("output")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--train-epochs", type=int, default=0, help="train this many epochs before probing")
    p.add_argument("--tol-scale", type=float, default=None, help="replace the tuned tol_scale (atol 1e-7 s, "
                   "rtol 1e-9 s)")
    args = p.parse_args(ours)
    dtype = getattr(torch, args.dtype)
    sys.path.insert(0, ".")
    ns, opt = official_namespace(runner)
    data, pos, model, split_seed = build(ns, opt, args.seed, dtype)
    losses = train(ns, opt, model, data, pos, args.train_epochs)
    opt["input_dropout"], opt["dropout"] = 0.0, 0.0  # read at every forward: the probe is deterministic
    if args.tol_scale is not None:
        opt["tol_scale"] = args.tol_scale
        model.odeblock.set_tol()
    state = {n: t.detach().clone() for n, t in model.state_dict().items()}
    out = probe(model, data, pos, opt)
    out.update(opt=dict(opt), split_seed=split_seed, train_losses=losses, tol_scale=opt["tol_scale"], params=state, pos=pos,
               x=data.x, y=data.y, masks=(data.train_mask, data.val_mask, data.test_mask))
    torch.save(out, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
