"""Adaptive explicit Runge-Kutta integration (Dormand-Prince 5(4), Bogacki-Shampine 3(2)) for direct
backprop, in few tensor operations.

The step-size control is torchdiffeq's (Hairer, Norsett and Wanner, *Solving Ordinary Differential Equations I*,
II.4): the same initial step, RMS error norm, acceptance rule, step factors (safety 0.9, growth at most 10,
shrink at most 0.2 after a rejection) and the same 4th-order dense output through the step's midpoint, so
the same steps are taken and the same number of evaluations made; results agree to float rounding
(``tests/solvers/test_runge_kutta.py``). What differs is the cost of a step under autograd: torchdiffeq
keeps the stages in one ``[..., stages]`` tensor and forms every combination as a product and a sum over its
last axis, whose backward copies that whole tensor for each stage; here the stages are a list and each
combination is a chain of ``y + c k`` updates, and the dense output at a requested time is one such chain
(the interpolating polynomial is linear in the stages, so its weights are scalars of the time alone).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .solution import CountedFunction, SolverError

SAFETY, GROWTH, SHRINK = 0.9, 10.0, 0.2


@dataclass(frozen=True)
class Tableau:
    """An embedded explicit Runge-Kutta pair whose last stage is evaluated at the new state (FSAL).

    ``c``: stage times; ``a``: stage coefficients (row ``i`` has ``i`` entries); ``b``: the solution's
    weights (equal to the last row of ``a``); ``e``: ``b`` minus the embedded solution's weights; ``mid``:
    weights of the state at the step's midpoint (for the dense output); ``order``: of the solution."""

    c: Tuple[float, ...]
    a: Tuple[Tuple[float, ...], ...]
    b: Tuple[float, ...]
    e: Tuple[float, ...]
    mid: Tuple[float, ...]
    order: int


DOPRI5 = Tableau(
    c=(1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=((1 / 5,), (3 / 40, 9 / 40), (44 / 45, -56 / 15, 32 / 9),
       (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
       (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
       (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)),
    b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    e=(35 / 384 - 1951 / 21600, 0.0, 500 / 1113 - 22642 / 50085, 125 / 192 - 451 / 720,
       -2187 / 6784 + 12231 / 42400, 11 / 84 - 649 / 6300, -1 / 60),
    # Shampine's dense-output weights at the midpoint (Mathematics of Computation 46, 1986)
    mid=(6025192743 / 30085553152 / 2, 0.0, 51252292925 / 65400821598 / 2, -2691868925 / 45128329728 / 2,
         187940372067 / 1594534317056 / 2, -1776094331 / 19743644256 / 2, 11237099 / 235043384 / 2),
    order=5)

BOSH3 = Tableau(
    c=(1 / 2, 3 / 4, 1.0),
    a=((1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
    b=(2 / 9, 1 / 3, 4 / 9, 0.0),
    e=(2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
    mid=(0.0, 1 / 2, 0.0, 0.0),
    order=3)

TABLEAUS = {"dopri5": DOPRI5, "bosh3": BOSH3}


def combine(y: Tensor, h: float, weights: Sequence[float], ks: Sequence[Tensor], out: Optional[Tensor] = None
            ) -> Tensor:
    """``y + h * sum_j weights[j] * ks[j]``, one fused multiply-add per nonzero weight (differentiable);
    written into ``out`` if given (not differentiable then)."""
    first = True
    for w, k in zip(weights, ks):
        if w != 0.0:
            if first:
                out = torch.add(y, k, alpha=h * w, out=out) if out is not None else torch.add(y, k, alpha=h * w)
                first = False
            else:
                out.add_(k, alpha=h * w)
    if first:
        return y.clone() if out is None else out.copy_(y)
    return out


def _rms(x: Tensor) -> float:
    return float(torch.linalg.vector_norm(x)) / math.sqrt(max(x.numel(), 1))


def dense_weights(tab: Tableau, x: float) -> List[float]:
    """Weights ``w`` with ``y(t0 + x h) ~ y0 + h sum_j w_j k_j``: the quartic through ``y0``, ``y1``, the
    midpoint and the end slopes (torchdiffeq's interpolant), written in the stages."""
    x2, x3, x4 = x * x, x ** 3, x ** 4
    c_y1 = -5 * x2 + 14 * x3 - 8 * x4
    c_mid = 16 * x2 - 32 * x3 + 16 * x4
    c_f0 = x - 4 * x2 + 5 * x3 - 2 * x4
    c_f1 = x2 - 3 * x3 + 2 * x4
    w = [c_y1 * b + c_mid * m for b, m in zip(tab.b, tab.mid)]
    w[0] += c_f0
    w[-1] += c_f1
    return w


def _initial_step(func: Callable, t0: float, y0: Tensor, f0: Tensor, order: int, rtol: float, atol: float,
                  time_of: Callable[[float], Tensor]) -> float:
    """Hairer's starting step (one evaluation of f), for a method of order ``order``."""
    with torch.no_grad():
        scale = torch.abs(y0).mul_(rtol).add_(atol)
        d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    f1 = func(time_of(t0 + h0), y0 + h0 * f0)
    with torch.no_grad():
        d2 = _rms((f1 - f0) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / order)
    return min(100 * h0, h1)


def _next_step(h: float, ratio: float, order: int) -> float:
    if ratio == 0.0:
        return h * GROWTH
    shrink = 1.0 if ratio < 1.0 else SHRINK
    return h * min(GROWTH, max(SAFETY / ratio ** (1.0 / order), shrink))


def _error_ratio(y: Tensor, y1: Tensor, stages: Sequence[Tensor], h: float, tab: Tableau, rtol: float,
                 atol: float) -> float:
    """RMS over the state of the embedded error estimate divided by ``atol + rtol max(|y|, |y1|)``."""
    with torch.no_grad():
        err = combine(torch.zeros_like(y), h, tab.e, stages)
        tol = torch.maximum(y.abs(), y1.abs()).mul_(rtol).add_(atol)
        return _rms(err.div_(tol))


def _check_step(scheme: str, t: float, h: float, steps: int, max_steps: int) -> None:
    if steps >= max_steps:
        raise SolverError(f"{scheme}: more than max_steps={max_steps} steps at t={t:.6g}, step {h:.3g}")
    if not (math.isfinite(h) and t + h > t):
        raise SolverError(f"{scheme}: step-size underflow at t={t:.6g}, step {h:.3g}: the problem is too stiff for "
                          "this scheme at these tolerances (try an implicit scheme)")


class Step(NamedTuple):
    """An accepted step, as :func:`integrate_adaptive` records it: its size, the state at its start, the
    states its stages were evaluated at (stages 1 on; stage 0 is f at ``y0``), and the requested outputs it
    interpolated (index into the result, dense-output weights)."""

    h: float
    y0: Tensor
    inputs: List[Tensor]
    outputs: List[Tuple[int, List[float]]]


def integrate_adaptive(counter: CountedFunction, z0: Tensor, ts: Sequence[float], tab: Tableau, rtol: float,
                       atol: float, max_steps: int, scheme: str, func: Optional[Callable] = None,
                       record: Optional[List[Step]] = None,
                       save: Optional[Callable[[int, Tensor], Tensor]] = None) -> Tensor:
    """States at ``ts`` (``ts[0]`` is the start, its state ``z0``), stacked ``[len(ts), *z0.shape]``;
    differentiable through the accepted steps. ``func(t, y)`` evaluates f (default: ``counter``, whose step
    callbacks are called as torchdiffeq calls them). Without autograd the states are written straight into
    the result. ``record``: a list to which each accepted step is appended (:class:`Step`).
    ``save(i, state)`` (without autograd only): what to keep of the state at ``ts[i]``, called as each is
    reached with a buffer that is overwritten afterwards; the results are stacked instead of the states, so
    no more than one state is held at a time."""
    func = counter if func is None else func
    if save is not None and torch.is_grad_enabled():
        raise ValueError("integrate_adaptive: save applies without autograd only")
    zs = None if torch.is_grad_enabled() or save is not None else z0.new_empty((len(ts),) + tuple(z0.shape))
    if zs is not None:
        zs[0].copy_(z0)
    saved = None if save is None else [save(0, z0)]
    buffer = None if save is None else torch.empty_like(z0)

    def time_of(t: float) -> Tensor:
        return torch.tensor(t, dtype=z0.dtype, device=z0.device)

    t, y = ts[0], z0
    f = func(time_of(t), y)
    h = _initial_step(func, t, y, f, tab.order, rtol, atol, time_of)
    last: Optional[Tuple[float, Tensor, List[Tensor]]] = None  # the last accepted step: start, y there, stages
    out: List[Tensor] = [z0]
    steps = 0
    for i, target in enumerate(ts[1:], 1):
        while target > t:
            _check_step(scheme, t, h, steps, max_steps)
            counter.callback_step(t, y, h, check=False)  # a non-finite state shows in the error ratio
            steps += 1
            stages, inputs = [f], []
            for c, a in zip(tab.c, tab.a):
                inputs.append(combine(y, h, a, stages))
                stages.append(func(time_of(t + c * h), inputs[-1]))
            y1 = combine(y, h, tab.b, stages)  # FSAL: the last stage was evaluated at y1 itself
            ratio = _error_ratio(y, y1, stages, h, tab, rtol, atol)
            if not math.isfinite(ratio):
                raise SolverError(f"{scheme}: non-finite error estimate at t={t:.6g} (step {h:.3g}): the state or "
                                  "f became non-finite")
            if ratio <= 1.0:
                counter.callback_accept_step(t, y, h)
                last = (t, y, stages)
                if record is not None:
                    record.append(Step(h, y, inputs, []))
                t, y, f = t + h, y1, stages[-1]
            else:
                counter.callback_reject_step(t, y, h)
            h = _next_step(h, ratio, tab.order)
        t_start, y_start, ks = last  # target > ts[0], so at least one step was accepted
        weights = dense_weights(tab, (target - t_start) / (t - t_start))
        if record is not None:
            record[-1].outputs.append((i, weights))
        if saved is not None:
            saved.append(save(i, combine(y_start, t - t_start, weights, ks, buffer)))
            continue
        out.append(combine(y_start, t - t_start, weights, ks, None if zs is None else zs[i]))
    if saved is not None:
        return torch.stack(saved)
    return torch.stack(out) if zs is None else zs
