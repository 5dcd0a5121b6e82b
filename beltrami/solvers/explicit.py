"""Fixed-step explicit Runge-Kutta schemes, run by torchdiffeq's fixed-grid solvers."""
from .base import Scheme, register


@register
class Euler(Scheme):
    name, order, stages, method = "euler", 1, 1, "euler"


@register
class RK4(Scheme):
    """Classical fourth order (torchdiffeq's ``rk4``, the 3/8-rule variant): four evaluations per step."""

    name, order, stages, method = "rk4", 4, 4, "rk4"
