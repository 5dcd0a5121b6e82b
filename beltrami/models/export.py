"""Export a trained BLEND as a TorchScript module that predicts without beltrami's Python code.

Exportable: BLEND with a fixed-step explicit scheme (``euler``, ``rk4``) and any attention function; the
loop is the same as torchdiffeq's fixed grid (same grid, same 3/8-rule RK4), so predictions are identical.
Not exportable: adaptive schemes (the step-size controller lives in torchdiffeq's Python), implicit
schemes (Krylov loops with data-dependent stopping in Python), and BLEND-kNN with rewiring during
training (the graph is baked in at export). The positional code ``phi(U)`` is computed once at export (it
does not depend on the features), so the exported module takes only ``x``.

Loading needs the two custom sparse ops registered: ``beltrami/sparse/ops.py`` is standalone (torch only),
so it can be loaded on its own (see :func:`load_ops`) where beltrami is not installed.
"""
from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blend import BLEND


def torchdiffeq_grid(t1: float, step: float) -> List[float]:
    """torchdiffeq's fixed grid on [0, t1]: multiples of ``step``, the last point moved to ``t1``."""
    n = int(math.ceil(t1 / step + 1))
    grid = [i * step for i in range(n)]
    grid[-1] = t1
    return grid


class ExportedBLEND(nn.Module):
    """TorchScript-able BLEND: ``forward(x) -> logits`` with the diffusion integrated by Euler or RK4."""

    def __init__(self, model: BLEND, pos: Optional[Tensor] = None) -> None:
        super().__init__()
        if model.scheme not in ("euler", "rk4"):
            raise ValueError(f"only fixed-step explicit schemes export (euler, rk4); this model uses {model.scheme}")
        self.feature = model.feature_encoder.lin
        with torch.no_grad():
            code = torch.zeros(0) if model.pos_encoder is None else model.pos_encoder(pos).detach()
        self.register_buffer("pos_code", code)
        self.has_pos = model.pos_encoder is not None
        self.function = model.function
        self.decoder = model.decoder
        self.rk4 = model.scheme == "rk4"
        self.register_buffer("grid", torch.tensor(torchdiffeq_grid(model.time, model.step_size)))

    def forward(self, x: Tensor) -> Tensor:
        z = self.feature(x)
        if self.has_pos:
            z = torch.cat([self.pos_code, z], dim=1)
        self.function.set_initial(z)
        grid = self.grid.to(z.dtype)
        for i in range(grid.shape[0] - 1):
            t0, t1 = grid[i], grid[i + 1]
            dt = t1 - t0
            if self.rk4:
                k1 = self.function(t0, z)
                k2 = self.function(t0 + dt / 3.0, z + dt * k1 / 3.0)
                k3 = self.function(t0 + dt * 2.0 / 3.0, z + dt * (k2 - k1 / 3.0))
                k4 = self.function(t1, z + dt * (k1 - k2 + k3))
                z = z + (k1 + 3.0 * (k2 + k3) + k4) * dt * 0.125
            else:
                z = z + dt * self.function(t0, z)
        return self.decoder(F.relu(z))


def export_torchscript(model: BLEND, path, pos: Optional[Tensor] = None) -> torch.jit.ScriptModule:
    """Script ``model`` (in eval mode) and save it to ``path``; returns the scripted module."""
    model = model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(ExportedBLEND(model, pos))
        scripted.save(str(path))
    return scripted


def load_ops() -> None:
    """Register ``torch.ops.beltrami.*`` from ``ops.py`` alone (no other beltrami module is imported)."""
    path = Path(__file__).resolve().parents[1] / "sparse" / "ops.py"
    spec = importlib.util.spec_from_file_location("beltrami_sparse_ops", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
