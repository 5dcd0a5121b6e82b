"""Adaptive explicit Runge-Kutta pairs with rtol/atol error control, run by torchdiffeq."""
from .base import Scheme, register


@register
class Dopri5(Scheme):
    """Dormand-Prince 5(4), FSAL: six new evaluations per attempted step."""

    name, order, adaptive, method = "dopri5", 5, True, "dopri5"


@register
class Bosh3(Scheme):
    """Bogacki-Shampine 3(2), FSAL: three new evaluations per attempted step."""

    name, order, adaptive, method = "bosh3", 3, True, "bosh3"
