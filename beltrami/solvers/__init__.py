"""ODE solvers for graph diffusion: explicit (Euler, RK4), adaptive (Dormand-Prince, Bogacki-Shampine),
implicit (backward Euler, Crank-Nicolson with Krylov solves); direct or adjoint backprop; exact NFE."""
from . import adaptive, explicit, implicit  # noqa: F401  (register the schemes)
from .base import ALIASES, SCHEMES, Scheme, get_scheme
from .krylov import KrylovResult, bicgstab, cg
from .solution import Solution, SolverError
from .solve import BACKPROP, solve

__all__ = ["solve", "Solution", "SolverError", "SCHEMES", "ALIASES", "Scheme", "get_scheme", "BACKPROP",
           "cg", "bicgstab", "KrylovResult"]
