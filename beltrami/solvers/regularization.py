"""RNODE regularisation (Finlay et al. 2020) as augmented state: the kinetic energy ``int ||f||^2 dt`` and the
Jacobian Frobenius norm ``int ||df/dz||_F^2 dt``, the latter by Hutchinson's estimator
``||df/dz||_F^2 = E_eps ||eps^T df/dz||^2`` with one Gaussian ``eps`` per solve (as RNODE does).

Both integrands are divided by the number of nodes (rows of ``z``) so weights transfer across graph sizes.
The augmented state is one flat tensor ``[z.flatten(), e_kinetic, e_jacobian]``, so every explicit and
adaptive scheme and both backprop modes handle it unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Regularization:
    """Weights of the two RNODE terms; ``seed`` fixes Hutchinson's noise (None: torch's global generator)."""

    kinetic: float = 0.0
    jacobian: float = 0.0
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        if self.kinetic < 0 or self.jacobian < 0:
            raise ValueError(f"regularisation weights must be >= 0, got kinetic={self.kinetic}, "
                             f"jacobian={self.jacobian}")

    @property
    def active(self) -> bool:
        return self.kinetic > 0 or self.jacobian > 0


class AugmentedDynamics(nn.Module):
    """``d/dt [z, e_k, e_j] = [f(t, z), ||f||^2 / N, ||eps^T df/dz||^2 / N]`` on a flat state."""

    def __init__(self, func: nn.Module, shape: torch.Size, reg: Regularization, eps: Optional[Tensor]) -> None:
        super().__init__()
        self.func = func
        self.shape = shape
        self.numel = int(torch.Size(shape).numel())
        self.reg = reg
        self.eps = eps

    def pack(self, z: Tensor) -> Tensor:
        return torch.cat([z.reshape(-1), z.new_zeros(2)])

    def unpack(self, state: Tensor):
        return state[: self.numel].view(self.shape), state[self.numel], state[self.numel + 1]

    def forward(self, t: Tensor, state: Tensor) -> Tensor:
        z = state[: self.numel].view(self.shape)
        n = self.shape[0]
        outside_grad = torch.is_grad_enabled()
        with torch.enable_grad():
            if self.reg.jacobian > 0 and not (outside_grad and z.requires_grad):
                # no-grad evaluation (torchdiffeq's adjoint forward): a detached leaf to take the vjp on
                z = z.detach().requires_grad_()
            f = self.func(t, z)
            kinetic = (f * f).sum() / n if self.reg.kinetic > 0 else f.new_zeros(())
            if self.reg.jacobian > 0:
                (vjp,) = torch.autograd.grad(f, z, self.eps, create_graph=True)
                jac = (vjp * vjp).sum() / n
            else:
                jac = f.new_zeros(())
        return torch.cat([f.reshape(-1), kinetic.reshape(1), jac.reshape(1)])


def hutchinson_noise(z0: Tensor, reg: Regularization) -> Optional[Tensor]:
    if reg.jacobian <= 0:
        return None
    gen = None if reg.seed is None else torch.Generator(device=z0.device).manual_seed(reg.seed)
    return torch.randn(z0.shape, generator=gen, dtype=z0.dtype, device=z0.device)
