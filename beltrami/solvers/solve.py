"""`solve`: the one entry point. The function, the scheme, step-size control and the backprop mode are
separate choices; statistics come back in ``Solution.stats``."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch
import torchdiffeq
from torch import Tensor, nn

from ..validation import check_choice, check_finite, check_int, check_options, check_real, optional_real
from .adjoint import adjoint_with_history
from .affine import solve_affine
from .base import get_scheme
from .implicit import integrate_theta
from .newton import NewtonSettings
from .regularization import AugmentedDynamics, Regularization, hutchinson_noise
from .runge_kutta import TABLEAUS, integrate_adaptive
from .solution import CountedFunction, Solution, SolverError, counted


BACKPROP = ("direct", "adjoint")
KRYLOV_CHOICES = ("auto", "cg", "bicgstab")
OPTIONS = ("adjoint_scheme", "adjoint_rtol", "adjoint_atol", "adjoint_step_size", "krylov", "krylov_tol",
           "krylov_max_iter", "newton_tol", "newton_max_iter", "t0", "validate", "regularization")


def solve(func: nn.Module, z0: Tensor, t1: float, *, scheme: str = "dopri5", step_size: Optional[float] = None,
          rtol: Optional[float] = None, atol: Optional[float] = None, backprop: str = "direct",
          max_steps: int = 10_000, t_eval: Optional[Sequence[float]] = None,
          save_fn: Optional[Callable[[Tensor], Tensor]] = None, **options: Any) -> Solution:
    """Integrate ``dz/dt = func(t, z)`` from ``t0`` (default 0) to ``t1``.

    Args:
        func: any ``nn.Module`` computing ``f(t, z)``; if it has ``set_initial(z0)`` (source terms, frozen
            attention) that is called first.
        z0: initial state ``[N, D]`` (any shape for explicit/adaptive schemes).
        t1: end time (> t0).
        scheme: ``euler``, ``rk4`` (fixed step), ``dopri5``, ``bosh3`` (adaptive), ``implicit_euler``,
            ``crank_nicolson`` (implicit: through ``func.linear_operator`` where f has one, else by
            Newton-Krylov with autograd Jacobian-vector products). Aliases: see ``SCHEMES``.
        step_size: step of fixed-step and implicit schemes (required there).
        rtol, atol: tolerances of adaptive schemes (default 1e-7 and 1e-9, torchdiffeq's).
        backprop: ``direct`` (autograd through the steps) or ``adjoint`` (torchdiffeq's continuous adjoint
            for explicit/adaptive schemes, a discrete adjoint for implicit ones).
        max_steps: more steps than this raise :class:`SolverError`.
        t_eval: times in (t0, t1] at which to also return the state (``Solution.zs``, ``Solution.at``).
        save_fn: what to keep of each state at ``t_eval`` (diffrax's ``SaveAt(fn=...)``): ``Solution.zs``
            holds ``save_fn(z(t))`` stacked, ``Solution.z`` still the state at ``t1``. Without autograd, the
            adaptive schemes call it as each state is reached, so only one state is held at a time (e.g. the
            logits at many times for the memory of one state).
        options: ``adjoint_scheme``/``adjoint_rtol``/``adjoint_atol``/``adjoint_step_size`` (backward
            solve; default the forward's), ``krylov`` (``auto``, ``cg``, ``bicgstab``), ``krylov_tol``
            (default 1e-8 in float64, 1e-5 in float32), ``krylov_max_iter`` (200), ``newton_tol`` (Newton's
            tolerance on ``max |G(z)| / (1 + max |z|)``; default ``krylov_tol``), ``newton_max_iter`` (20), ``t0`` (0.0),
            ``validate`` (check ``z0``; default True), ``regularization`` (a
            :class:`~beltrami.Regularization`: RNODE kinetic / Jacobian terms integrated as
            augmented state, explicit and adaptive schemes; read them from ``Solution.regularization``).

    Returns:
        :class:`Solution` with ``z`` (state at ``t1``), ``zs`` at ``ts`` and ``stats``.

    Raises:
        ValueError: unknown scheme, backprop mode or option (listing the valid ones), missing step size.
        SolverError: step-size underflow, a non-finite state, too many steps, a failed linear solve.
    """
    check_options(options, OPTIONS, "solve option(s)")
    cls = get_scheme(scheme)
    check_choice(backprop, BACKPROP, "backprop mode")
    _check_function_and_state(func, z0, options.get("validate", True))
    ts = _times(options.get("t0", 0.0), t1, t_eval)
    check_step_options(cls, step_size, rtol, atol)
    max_steps = check_int(max_steps, "max_steps", 1)

    if hasattr(func, "set_initial"):
        func.set_initial(z0)
    counter, aug, reg = _counted_dynamics(func, z0, cls, backprop, options)
    extra = {"linear_iterations": 0, "adjoint_linear_iterations": 0, "adjoint_steps": 0}
    final: list = []  # the state at t1, when save_fn was applied as the states were reached
    save = _streamed(save_fn, len(ts) - 1, final) if aug is None else None

    if cls.implicit:
        z, zs = _implicit(cls, counter, z0, ts, float(step_size), backprop, max_steps, options, extra)
    elif aug is not None:
        flat = _torchdiffeq(cls, counter, aug.pack(z0), ts, step_size, rtol, atol, backprop, max_steps, options)
        zs = flat[:, : aug.numel].reshape(len(ts), *z0.shape)
        z = zs[-1]
        extra["regularization"] = {"kinetic": flat[-1, aug.numel], "jacobian": flat[-1, aug.numel + 1]}
        extra["regularization_weights"] = reg
    elif (form := _affine_form(func, cls, backprop)) is not None:
        zs = solve_affine(counter, form, z0, ts, TABLEAUS[cls.method], 1e-7 if rtol is None else rtol,
                          1e-9 if atol is None else atol, max_steps, cls.name, save=save)
        z = zs[-1]
    else:
        zs = _torchdiffeq(cls, counter, z0, ts, step_size, rtol, atol, backprop, max_steps, options, save)
        z = zs[-1]
        if not cls.adaptive:
            check_explicit_growth(cls.name, step_size, func, z0, zs, ts)
    if save_fn is not None:
        z, zs = (final[0], zs) if final else (z, torch.stack([save_fn(state) for state in zs]))
    sol = Solution(z=z, ts=torch.tensor(ts[1:], dtype=torch.float64), zs=zs[1:], scheme=cls.name,
                   backprop=backprop, counter=counter, extra=extra)
    sol._nfe_forward = counter.forward_calls
    return sol


def _counted_dynamics(func: nn.Module, z0: Tensor, cls, backprop: str, options):
    """What the schemes evaluate, counted: ``func``, or its dynamics augmented with the RNODE terms of
    ``options["regularization"]``; and that augmentation (or None) and the regularization."""
    reg = options.get("regularization") or Regularization()
    if not isinstance(reg, Regularization):
        raise TypeError(f"regularization must be a beltrami.Regularization, got {type(reg).__name__}")
    if reg.active and cls.implicit:
        raise ValueError(f"regularization needs an explicit or adaptive scheme, not {cls.name}")
    aug = AugmentedDynamics(func, z0.shape, reg, hutchinson_noise(z0, reg)) if reg.active else None
    adjoint_adaptive = backprop == "adjoint" and get_scheme(options.get("adjoint_scheme", cls.name)).adaptive
    return counted(func if aug is None else aug, cls.name, cls.adaptive, adjoint_adaptive), aug, reg


def _implicit(cls, counter: CountedFunction, z0: Tensor, ts, step_size: float, backprop: str, max_steps: int,
              options, extra):
    krylov = options.get("krylov", "auto")
    check_choice(krylov, KRYLOV_CHOICES, "krylov method")
    tol = options.get("krylov_tol", 1e-8 if z0.dtype == torch.float64 else 1e-5)
    settings = NewtonSettings(tol=options.get("newton_tol", tol), max_iter=int(options.get("newton_max_iter", 20)),
                              krylov=krylov, krylov_tol=tol, krylov_max_iter=int(options.get("krylov_max_iter", 200)))
    z, states = integrate_theta(cls, counter, z0, ts, step_size, backprop == "adjoint", settings, max_steps, extra)
    return z, torch.stack(states)


def _check_function_and_state(func: nn.Module, z0: Tensor, validate: bool) -> None:
    if not isinstance(func, nn.Module):
        raise TypeError(f"func must be an nn.Module computing f(t, z), got {type(func).__name__}")
    if not isinstance(z0, Tensor) or not z0.is_floating_point():
        raise TypeError("z0 must be a floating-point tensor")
    if validate:
        check_state = getattr(func, "check_state", None)
        check_state(z0, "z0") if callable(check_state) else check_finite(z0, "z0")


def _times(t0, t1, t_eval) -> list:
    """``[t0, *t_eval, t1]`` (t1 once), each time a finite number and the requested ones strictly increasing
    in (t0, t1]: the states come back in the order asked for, one per requested time."""
    t0, t1 = check_real(t0, "t0"), check_real(t1, "t1")
    if not t1 > t0:
        raise ValueError(f"t1 must be greater than t0={t0}, got {t1}")
    ts = [check_real(t, "each time of t_eval") for t in (t_eval or [])]
    # sorting or merging them instead would hand back fewer states, or states in another order, than asked
    for i in range(1, len(ts)):
        if not ts[i] > ts[i - 1]:
            raise ValueError(f"t_eval must be strictly increasing: t_eval[{i}] = {ts[i]} follows "
                             f"t_eval[{i - 1}] = {ts[i - 1]}")
    if ts and (ts[0] <= t0 or ts[-1] > t1):
        raise ValueError(f"t_eval must lie in (t0, t1] = ({t0}, {t1}], got {list(t_eval)}")
    return [t0] + ts + ([] if ts and ts[-1] == t1 else [t1])


def _streamed(save_fn, last: int, final: list):
    """The ``save(i, state)`` the adaptive loops call as each output state is reached (without autograd
    only): ``save_fn`` of the state, keeping a copy of the last one (the state at t1) in ``final``."""
    if save_fn is None or torch.is_grad_enabled():
        return None

    def save(i: int, state: Tensor) -> Tensor:
        if i == last:
            final.append(state.clone())
        return save_fn(state)
    return save


def check_explicit_growth(scheme: str, step_size: float, func: nn.Module, z0: Tensor, zs: Tensor, ts) -> None:
    """A fixed explicit step outside the scheme's stability region grows the state geometrically: refuse
    states beyond what ``func.state_bound`` says the exact flow can reach (twice that, since a stable step
    of a higher-order scheme can overshoot a maximum principle a little). Non-finite states are caught by
    the step callbacks already. O(K N D)."""
    with torch.no_grad():
        bound = func.state_bound(z0, ts[-1] - ts[0]) if hasattr(func, "state_bound") else None
        if bound is None:
            return
        peak = zs.detach().abs().flatten(1).amax(1)
        over = peak > 2.0 * bound + 1e-12
        if bool(over.any()):
            first = int(over.nonzero()[0])
            raise SolverError(f"{scheme}: max|z| reached {float(peak[first]):.3g} at t={ts[first]:.6g}, but this "
                              f"diffusion cannot take it past {bound:.3g} from z(0): the step is outside the "
                              f"scheme's stability region: take a smaller step_size than {step_size:g}, an "
                              "adaptive scheme (dopri5) or an implicit one (implicit_euler, crank_nicolson)")


def check_step_options(cls, step_size, rtol, atol) -> None:
    """Step size for fixed-step and implicit schemes, tolerances for adaptive ones: the right ones given,
    each a finite positive number."""
    if not cls.adaptive:
        if step_size is None:
            raise ValueError(f"scheme {cls.name} needs step_size > 0")
        check_real(step_size, "step_size", low=0.0, low_open=True)
        if rtol is not None or atol is not None:
            raise ValueError(f"rtol/atol apply to adaptive schemes only, not {cls.name}")
        return
    if step_size is not None:
        raise ValueError(f"scheme {cls.name} is adaptive: give rtol/atol, not step_size")
    rtol, atol = optional_real(rtol, "rtol", low=0.0), optional_real(atol, "atol", low=0.0)
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("rtol and atol are both 0: no step would ever be accepted; give either a positive value")


def _affine_form(func: nn.Module, cls, backprop: str):
    """f's :class:`~beltrami.solvers.interfaces.AffineForm` where the affine solver applies (an adaptive scheme
    with direct backprop, f affine on a graph), else None."""
    if not (cls.adaptive and cls.method in TABLEAUS and backprop == "direct"):
        return None
    affine_form = getattr(func, "affine_form", None)
    return affine_form() if callable(affine_form) else None


def _torchdiffeq(cls, counter: CountedFunction, z0: Tensor, ts, step_size, rtol, atol, backprop: str,
                 max_steps: int, options, save=None) -> Tensor:
    t = torch.tensor(ts, dtype=torch.float64 if z0.dtype == torch.float64 else torch.float32, device=z0.device)
    rtol = 1e-7 if rtol is None else rtol
    atol = 1e-9 if atol is None else atol
    if cls.adaptive and backprop == "direct" and cls.method in TABLEAUS:
        # torchdiffeq's steps in fewer tensor operations (beltrami.solvers.runge_kutta)
        return integrate_adaptive(counter, z0, ts, TABLEAUS[cls.method], rtol, atol, max_steps, cls.name,
                                  save=save)
    if cls.adaptive:
        solver_options = {"max_num_steps": max_steps}
        kwargs = dict(rtol=rtol, atol=atol)
    else:
        steps = sum(int(torch.ceil(torch.tensor((b - a) / step_size - 1e-9))) for a, b in zip(ts[:-1], ts[1:]))
        if steps > max_steps:
            raise SolverError(f"{cls.name}: {steps} steps of size {step_size} exceed max_steps={max_steps}")
        solver_options = {"step_size": step_size}
        kwargs = {}
    return _run(cls, counter, z0, t, solver_options, kwargs, backprop, max_steps, step_size, rtol, atol, options)


def _run(cls, counter, z0, t, solver_options, kwargs, backprop, max_steps, step_size, rtol, atol, options):
    try:
        if backprop == "direct":
            return torchdiffeq.odeint(counter, z0, t, method=cls.method, options=solver_options, **kwargs)
        adj = get_scheme(options.get("adjoint_scheme", cls.name))
        if adj.implicit:
            raise ValueError("adjoint_scheme must be explicit or adaptive for a torchdiffeq adjoint")
        adj_options = ({"max_num_steps": max_steps} if adj.adaptive else
                       {"step_size": options.get("adjoint_step_size", step_size)})
        if not adj.adaptive and adj_options["step_size"] is None:
            raise ValueError(f"adjoint_scheme {adj.name} needs adjoint_step_size")
        adjoint_kwargs = dict(method=cls.method, options=solver_options, adjoint_method=adj.method,
                              adjoint_options=adj_options, adjoint_rtol=options.get("adjoint_rtol", rtol),
                              adjoint_atol=options.get("adjoint_atol", atol), **kwargs)
        return adjoint_with_history(counter, z0, t, adjoint_kwargs)
    except AssertionError as err:
        msg = str(err)
        where = f"at t={counter.last_t:.6g}, step {counter.last_dt:.3g}" if counter.last_t is not None else ""
        if "underflow" in msg:
            raise SolverError(f"{cls.name}: step-size underflow {where}: the problem is too stiff for this "
                              "scheme at these tolerances (try an implicit scheme)") from err
        if "max_num_steps" in msg:
            raise SolverError(f"{cls.name}: more than max_steps={max_steps} steps {where}") from err
        raise SolverError(f"{cls.name}: {msg} {where}") from err
