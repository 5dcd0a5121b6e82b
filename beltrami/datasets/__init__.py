"""Datasets: verified raw files -> :class:`Dataset` (graph, features, labels, split masks)."""
from .dataset import Dataset
from .files import ChecksumError, CorruptFileError, DatasetFileError, MissingFileError
from .load import DATASETS, canonical_name, file_list, load_dataset
from .raw import RawData
from .synthetic import csbm

__all__ = [
    "Dataset", "RawData", "load_dataset", "canonical_name", "file_list", "csbm", "DATASETS",
    "DatasetFileError", "MissingFileError", "ChecksumError", "CorruptFileError",
]
