"""beltrami: graph Beltrami flow and BLEND (Beltrami Neural Diffusion, Chamberlain et al., NeurIPS 2021).

The public API is re-exported here; everything else is an implementation detail.
"""
from .datasets import (
    ChecksumError,
    CorruptFileError,
    Dataset,
    DatasetFileError,
    MissingFileError,
    load_dataset,
)
from .functions import (
    BeltramiDiffusion,
    EdgeAttention,
    FrozenAttentionDiffusion,
    LaplacianDiffusion,
    compile_function,
)
from .graph import Graph
from .solvers import SCHEMES, Solution, SolverError, solve
from .solvers.regularization import Regularization
from .models import BLEND, GAT, GCN
from .sparse import edge_softmax, spmm
from .training import FitConfig, FitResult, TrainingDivergedError, fit
from .version import __version__

__all__ = [
    "__version__",
    "Graph",
    "Dataset",
    "load_dataset",
    "DatasetFileError",
    "MissingFileError",
    "ChecksumError",
    "CorruptFileError",
    "spmm",
    "edge_softmax",
    "EdgeAttention",
    "BeltramiDiffusion",
    "FrozenAttentionDiffusion",
    "LaplacianDiffusion",
    "compile_function",
    "solve",
    "Solution",
    "SolverError",
    "SCHEMES",
    "Regularization",
    "BLEND",
    "GCN",
    "GAT",
    "fit",
    "FitConfig",
    "FitResult",
    "TrainingDivergedError",
]
