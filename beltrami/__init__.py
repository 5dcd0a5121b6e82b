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
from .graph import Graph
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
]
