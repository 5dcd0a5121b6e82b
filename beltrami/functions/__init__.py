"""ODE right-hand sides f(t, z) on graphs: Beltrami flow (time-dependent or frozen attention) and linear
diffusion, plus the multi-head edge attention they use."""
from .attention import EdgeAttention
from ..solvers.interfaces import LinearOperator
from .base import GraphODEFunction
from .beltrami import BeltramiDiffusion, FrozenAttentionDiffusion
from .compile import COMPILE_MODES, compile_function
from .laplacian import LaplacianDiffusion, normalised_weights

__all__ = ["EdgeAttention", "GraphODEFunction", "LinearOperator", "BeltramiDiffusion", "FrozenAttentionDiffusion",
           "LaplacianDiffusion", "normalised_weights", "compile_function", "COMPILE_MODES"]
