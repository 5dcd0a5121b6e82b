"""`fit()`: train and evaluate a model on a dataset, over one or several seeds.

Protocol: full-batch training with cross-entropy on the training nodes; after every epoch the model is
evaluated; the weights of the best validation accuracy are kept, and the reported accuracies are those of
that epoch (optionally stopping after ``patience`` epochs without improvement).
"""
from __future__ import annotations

import copy
import math
import random
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor, nn

from ..allocator import (HUGE_PAGES_ENV, freed_memory_kept, huge_pages_active, huge_pages_supported,
                         pooled_cpu_tensors)
from ..bench.measure import peak_rss_bytes
from ..datasets import Dataset
from ..datasets.load import canonical_name
from ..functions import compile_function
from ..graph import Graph
from ..models import BLEND, GAT, GCN
from ..solvers import SolverError
from ..sparse import release_buffers
from ..validation import check_writable_file
from .checkpoint import load_checkpoint, save_checkpoint
from .config import FitConfig
from .data import as_dataset, normalise_features
from .guards import Diverged, TrainingDivergedError, divergence, solve_failure
from .positional import dynamic_rewire, positional_coordinates, rewired_graph
from .result import FitResult, RunResult, git_commit

EpochCallback = Callable[[int, Dict[str, float]], None]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(cfg: FitConfig, ds: Dataset, graph: Graph, pos: Optional[Tensor]) -> nn.Module:
    """The model ``cfg.model.kind`` for ``ds``, diffusing on ``graph`` with coordinates ``pos``."""
    f, c, m = ds.num_features, ds.num_classes, cfg.model
    p = 0 if pos is None else pos.shape[1]
    if m.kind == "gcn":
        return GCN(f, c, ds.graph, hidden=m.hidden, dropout=m.dropout, backend=cfg.run.sparse_backend, pos_channels=p)
    if m.kind == "gat":
        return GAT(f, c, ds.graph, hidden=m.hidden, heads=m.heads, dropout=m.dropout, backend=cfg.run.sparse_backend,
                   pos_channels=p)
    model = BLEND(f, c, graph, pos_channels=p, backend=cfg.run.sparse_backend, **m.blend_arguments(),
                  **cfg.solver.blend_arguments())
    if cfg.run.compile != "eager":
        model.function = compile_function(model.function, cfg.run.compile)
    return model


def make_optimizer(cfg: FitConfig, params) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax, "rmsprop": torch.optim.RMSprop,
           "sgd": torch.optim.SGD}[cfg.train.optimizer]
    return cls(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)


def _accuracies(logits: Tensor, ds: Dataset) -> Tensor:
    """Train, validation and test accuracy of logits ``[..., N, C]``: ``[..., 3]`` (0 for an empty mask)."""
    hit = (logits.argmax(-1) == ds.y.to(logits.device)).float()
    return torch.stack([hit[..., m].mean(-1) if bool(m.any()) else hit.new_zeros(hit.shape[:-1])
                        for m in (ds.train_mask, ds.val_mask, ds.test_mask)], dim=-1).cpu()


def evaluate(cfg: FitConfig, model: nn.Module, ds: Dataset, x: Tensor, pos: Optional[Tensor]
             ) -> Tuple[float, float, float, Optional[float]]:
    """Train/val/test accuracy of ``model`` in eval mode, and the integration time they were read at.

    With ``cfg.train.select_time`` a BLEND is decoded at ``select_time_points`` times in ``(0, select_time * T]``
    and the first time of best validation accuracy is kept, as the official code's early-stopping
    integrator does at every accepted step (selection uses validation labels only). If the solve past the
    trained horizon fails (the dynamics can stiffen there: step-size underflow), the model is read at T; if
    that fails too, the accuracies are NaN (an unscored epoch, never the best) and the time None.
    The model's ``last_solution`` stays that of training (the evaluation's holds every state it read)."""
    model.eval()
    trained = getattr(model, "last_solution", None)
    try:
        return _evaluate(cfg, model, ds, x, pos)
    finally:
        if isinstance(model, BLEND):
            model.last_solution = trained


def _evaluate(cfg: FitConfig, model: nn.Module, ds: Dataset, x: Tensor, pos: Optional[Tensor]
              ) -> Tuple[float, float, float, Optional[float]]:
    with torch.no_grad():
        if cfg.train.select_time > 0 and isinstance(model, BLEND):
            k = cfg.train.select_time_points
            times = [cfg.train.select_time * cfg.solver.time * (i + 1) / k for i in range(k)]
            try:
                accs = _accuracies(model.forward_times(x, pos, times), ds).tolist()
                best = max(range(k), key=lambda i: (accs[i][1], -i))
                return (*accs[best], times[best])
            except SolverError as err:
                warnings.warn(f"time selection up to {times[-1]:.3g} failed ({err}); read at T = {cfg.solver.time:.3g}")
        try:
            tr, va, te = _accuracies(model(x, pos), ds).tolist()
        except SolverError as err:
            # without dropout the flow can blow up where training's did not (the time-dependent Cora preset
            # does): the epoch has no prediction to score, and must not be picked as the best
            warnings.warn(f"evaluation failed ({err}); this epoch is not scored (NaN) and cannot be the best")
            return math.nan, math.nan, math.nan, None
        return tr, va, te, (cfg.solver.time if isinstance(model, BLEND) else None)


def _nfe(model: nn.Module) -> Tuple[int, int]:
    sol = getattr(model, "last_solution", None)
    if sol is None:
        return 0, 0
    s = sol.stats
    return s["nfe_forward"], s["nfe_backward"]


def _reg_loss(model: nn.Module) -> Tensor:
    sol = getattr(model, "last_solution", None)
    return sol.regularization["loss"] if sol is not None else torch.zeros(())


def train_run(cfg: FitConfig, ds: Dataset, graph: Graph, pos: Optional[Tensor], seed: int, run: int,
              progress: Optional[Progress], on_epoch: Optional[EpochCallback], started: Optional[float] = None
              ) -> Tuple[RunResult, nn.Module]:
    """One seed of training; returns its result and the model with its best-validation weights.
    ``started``: ``time.perf_counter()`` when the run's data loading began (default: now)."""
    started = time.perf_counter() if started is None else started
    seed_everything(seed)
    device = torch.device(cfg.run.device)
    model = build_model(cfg, ds, graph, pos).to(device)
    opt = make_optimizer(cfg, model.parameters())
    x, y = normalise_features(ds.x, cfg.data.feature_norm).to(device), ds.y.to(device)
    train_mask = ds.train_mask.to(device)
    pos = None if pos is None else pos.to(device)
    state = {"epoch": 0, "history": [], "best": None}
    ckpt = None if cfg.run.checkpoint_dir is None else Path(cfg.run.checkpoint_dir) / f"run{run}-seed{seed}.pt"
    if cfg.run.resume and ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, model, opt, cfg.flat())
    task = progress.add_task(f"{cfg.model.kind} seed {seed}", total=cfg.train.epochs, completed=state["epoch"],
                             info="") if progress else None
    best = state["best"]
    dynamic = cfg.encoding.rewire_every > 0 and isinstance(model, BLEND)
    startup = time.perf_counter() - started
    for epoch in range(state["epoch"], cfg.train.epochs):
        # before every rewire_every-th epoch counted from 1, as the official runner: its first graph serves
        # rewire_every - 1 epochs
        if dynamic and (epoch + 1) % cfg.encoding.rewire_every == 0:
            dynamic_rewire(cfg, model, x, pos)
        t0 = time.perf_counter()
        model.train()
        opt.zero_grad()
        try:
            logits = model(x, pos)
        except SolverError as err:
            why = solve_failure(err, epoch, cfg.train.lr)
        else:
            loss = F.cross_entropy(logits[train_mask], y[train_mask]) + _reg_loss(model)
            loss_value = float(loss.detach())
            why = divergence(loss_value, state["history"][0]["loss"] if state["history"] else None, epoch,
                             cfg.train.lr)
        if why is not None:  # before the step: the weights stay those of the last good epoch
            raise Diverged(why, _finish(cfg, model, seed, best, state["history"], startup) if best else None, model)
        loss.backward()
        opt.step()
        nfe_f, nfe_b = _nfe(model)
        t1 = time.perf_counter()
        tr, va, te, t_read = evaluate(cfg, model, ds, x, pos)
        seconds, eval_seconds = t1 - t0, time.perf_counter() - t1
        record = {"epoch": epoch, "loss": loss_value, "train_acc": tr, "val_acc": va, "test_acc": te,
                  "nfe_forward": nfe_f, "nfe_backward": nfe_b, "seconds": seconds, "eval_seconds": eval_seconds,
                  "time": t_read}
        state["history"].append(record)
        if best is None or va > best["val_acc"] or (math.isnan(best["val_acc"]) and not math.isnan(va)):
            best = {**record, "state_dict": copy.deepcopy(model.state_dict())}
        state["best"], state["epoch"] = best, epoch + 1
        if task is not None:
            progress.update(task, advance=1, info=f"loss {record['loss']:.3f} val {va:.3f} test {te:.3f} "
                            f"NFE {nfe_f}/{nfe_b} {seconds + eval_seconds:.2f}s")
        if ckpt is not None and cfg.run.checkpoint_every and (epoch + 1) % cfg.run.checkpoint_every == 0:
            save_checkpoint(ckpt, model, opt, state, cfg.flat())
        if on_epoch is not None:
            on_epoch(epoch, record)
        if cfg.train.patience is not None and epoch - best["epoch"] >= cfg.train.patience:
            break
    return _finish(cfg, model, seed, best, state["history"], startup), model


def _finish(cfg: FitConfig, model: nn.Module, seed: int, best: dict, hist: list, startup: float) -> RunResult:
    """Load the best-validation weights into ``model`` and summarise the run's epochs."""
    model.load_state_dict(best["state_dict"])
    release_buffers()  # the C++ kernels' pooled memory goes back to the system with the run
    if cfg.train.select_time > 0 and isinstance(model, BLEND):
        model.time = best["time"]  # the returned model predicts at the time its reported accuracy was read
    return RunResult(seed=seed, best_epoch=best["epoch"], train_acc=best["train_acc"], val_acc=best["val_acc"],
                     test_acc=best["test_acc"], seconds_per_epoch=float(np.mean([h["seconds"] for h in hist])),
                     nfe_forward=[h["nfe_forward"] for h in hist], nfe_backward=[h["nfe_backward"] for h in hist],
                     history=hist, best_time=best.get("time"),
                     eval_seconds_per_epoch=float(np.mean([h.get("eval_seconds", 0.0) for h in hist])),
                     startup_seconds=startup)


HUGE_PAGES_HINT_NODES = 100_000
"""From this many nodes on, adjoint training on the CPU without huge pages warns (see :func:`_suggest_huge_pages`)."""


def _suggest_huge_pages(cfg: FitConfig, num_nodes: int) -> None:
    # On the arxiv-sized graph, dopri5 with the adjoint took 1.83x longer per epoch without them, while rk4
    # with direct backprop ran 5-7% faster without (docs/measurements/2026-12-cpu-memory.md); they can only be switched on
    # before the process's first tensor, so the most fit() can do is say so where they were measured to help.
    on_cpu = torch.device(cfg.run.device).type == "cpu"
    if (num_nodes >= HUGE_PAGES_HINT_NODES and cfg.solver.backprop == "adjoint" and on_cpu
            and huge_pages_supported() and not huge_pages_active()):
        # the pool: 2.1x on the same runs at 1.09x the peak memory (docs/measurements/2026-12-cpu-memory.md)
        pool = "" if cfg.run.pool_memory else "; or pass pool_memory=True (faster still, about the same memory)"
        warnings.warn(f"adjoint training of a {num_nodes:,}-node graph on the CPU without huge pages: set "
                      f"{HUGE_PAGES_ENV}=1 in the environment before Python starts (faster adjoint epochs at "
                      f"ogbn-arxiv's size){pool}; see beltrami.allocator", stacklevel=3)


def fit(data: Union[str, Dataset, Any], preset: Optional[str] = None, *, root: Optional[str] = None,
        on_epoch: Optional[EpochCallback] = None, output: Optional[str] = None, **config: Any) -> FitResult:
    """Train ``config['model']`` (default BLEND) on ``data`` and evaluate it.

    Args:
        data: a dataset name (``"cora"``), a :class:`~beltrami.Dataset`, a PyG ``Data`` (``x``, ``y``,
            ``edge_index``, masks), or a tuple ``(edge_index, x, y, (train_mask, val_mask, test_mask))``.
        preset: ``fast``, ``paper`` or ``paper-beltrami`` (see :mod:`beltrami.training.config`); the
            keyword options override it.
        root: data root for named datasets.
        on_epoch: called as ``on_epoch(epoch, record)`` after every epoch.
        output: write the result there as JSON (atomically), rewritten after every seed so that a run
            stopped part-way keeps the seeds it finished (``len(result.runs)`` says how many).
        config: options by flat name (``lr=0.01``, ``scheme="rk4"``) or whole sections (``train={"lr": 0.01}``;
            see :class:`~beltrami.training.config.FitConfig`); an unknown name, or one given twice, raises
            ValueError listing the valid ones.

    Returns:
        :class:`FitResult` with mean ± std over the seeds (``runs=N`` or ``seeds=[...]``). For random
        splits each seed also draws its own split, as in the paper's protocol.

    ``pool_memory`` and ``keep_freed_memory`` change the process's CPU allocator for the duration of the call
    only (see :func:`allocator_scope`).
    """
    called = time.perf_counter()
    cfg = FitConfig.build(_preset_key(data), preset, **config)
    if output is not None:
        check_writable_file(output, "output")
    with allocator_scope(cfg):
        return _fit_seeds(cfg, data, root, on_epoch, output, called)


@contextmanager
def allocator_scope(cfg: FitConfig) -> Iterator[None]:
    """The CPU allocator choices of ``cfg`` for the duration of a fit; what was there before, afterwards."""
    with ExitStack() as scope:
        if cfg.run.pool_memory:
            scope.enter_context(pooled_cpu_tensors())
        if cfg.run.keep_freed_memory and not scope.enter_context(freed_memory_kept()):
            warnings.warn("keep_freed_memory=True has no effect here: the C library is not glibc", stacklevel=4)
        yield


def _fit_seeds(cfg: FitConfig, data: Any, root: Optional[str], on_epoch: Optional[EpochCallback],
               output: Optional[str], called: float) -> FitResult:
    """Every seed of :func:`fit`, the result rewritten after each."""
    commit = git_commit()
    seeds = cfg.run_seeds()
    runs = []
    model = pos = None
    show = cfg.run.progress
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=False,
                        disable=not show)
    with progress:
        for run, seed in enumerate(seeds):
            started = time.perf_counter()
            ds = as_dataset(data, cfg, seed, root)
            if run == 0:
                _suggest_huge_pages(cfg, ds.graph.num_nodes)
            pos = positional_coordinates(cfg, ds)
            graph = rewired_graph(cfg, ds, pos)
            try:
                result, model = train_run(cfg, ds, graph, pos, seed, run, progress if show else None, on_epoch,
                                          started)
            except Diverged as stop:
                runs += [stop.run] if stop.run is not None else []
                out = _result(cfg, ds, runs, stop.model, pos, commit, called, output) if runs else None
                raise TrainingDivergedError(f"seed {seed}: {stop}", out) from None
            runs.append(result)
            out = _result(cfg, ds, runs, model, pos, commit, called, output)
    return out


def _result(cfg: FitConfig, ds: Dataset, runs: List[RunResult], model: nn.Module, pos: Optional[Tensor],
            commit: Optional[str], called: float, output: Optional[str]) -> FitResult:
    """The result of the runs so far, written to ``output`` after every seed (a run stopped part-way keeps
    the seeds it finished)."""
    peak = torch.cuda.max_memory_allocated() if cfg.run.device.startswith("cuda") else peak_rss_bytes()
    params = sum(p.numel() for p in model.parameters())
    out = FitResult.from_runs(ds.name, cfg.model.kind, runs, peak, params, cfg.to_dict(), commit)
    out.wall_seconds = time.perf_counter() - called
    if output is not None:
        out.save(output)
    out.trained_model, out.pos = model, pos
    return out


def _preset_key(data: Any) -> Optional[str]:
    """The canonical dataset name presets are looked up by; a name that is no dataset raises ValueError,
    other data without a known name gives None."""
    if isinstance(data, str):
        return canonical_name(data)
    name = getattr(data, "name", None)
    if not isinstance(name, str):
        return None
    try:
        return canonical_name(name)
    except ValueError:
        return None
