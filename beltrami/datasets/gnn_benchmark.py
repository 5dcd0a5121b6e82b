"""Amazon Computers, Amazon Photo and Coauthor CS from gnn-benchmark ``.npz`` files (Shchur et al. 2018).

Each file stores the adjacency and attribute matrices as CSR parts (``adj_data``, ``adj_indices``,
``adj_indptr``, ``adj_shape``; ``attr_*`` likewise, or a dense ``attr_matrix``) and a ``labels`` vector.
They are read with ``allow_pickle=False``: the object arrays some files carry (node and class names) are
never touched, so no pickle runs.
"""
from __future__ import annotations

import zipfile
from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch

from ..paths import PathLike
from .files import CorruptFileError, fetch_many
from .raw import RawData

FILENAMES = {
    "computers": "amazon_electronics_computers.npz",
    "photo": "amazon_electronics_photo.npz",
    "coauthor-cs": "ms_academic_cs.npz",
}


def _csr(npz, prefix: str, path) -> sp.csr_matrix:
    try:
        return sp.csr_matrix((npz[f"{prefix}_data"], npz[f"{prefix}_indices"], npz[f"{prefix}_indptr"]),
                             shape=tuple(npz[f"{prefix}_shape"]))
    except KeyError as err:
        raise CorruptFileError(f"{path}: missing array {err} of the {prefix} matrix") from err
    except ValueError as err:
        raise CorruptFileError(f"{path}: malformed {prefix} matrix ({err})") from err


def load_npz(name: str, root: Optional[PathLike] = None, download: bool = True) -> RawData:
    if name not in FILENAMES:
        raise ValueError(f"unknown gnn-benchmark dataset {name!r}; valid: {', '.join(FILENAMES)}")
    relpath = f"npz/{FILENAMES[name]}"
    paths, digests = fetch_many([relpath], root, download=download)
    path = paths[relpath]
    try:
        with np.load(path, allow_pickle=False) as npz:
            adj = _csr(npz, "adj", path)
            attr = _csr(npz, "attr", path) if "attr_data" in npz.files else sp.csr_matrix(npz["attr_matrix"])
            if "labels" not in npz.files:
                raise CorruptFileError(f"{path}: no 'labels' array")
            labels = np.asarray(npz["labels"]).astype(np.int64)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        if isinstance(err, CorruptFileError):
            raise
        raise CorruptFileError(f"{path} is not a readable .npz file ({err})") from err
    n = adj.shape[0]
    if adj.shape != (n, n) or attr.shape[0] != n or labels.shape != (n,):
        raise CorruptFileError(f"{path}: inconsistent shapes adj {adj.shape}, attr {attr.shape}, labels {labels.shape}")
    coo = adj.tocoo()
    return RawData(
        name=name,
        edge_index=torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64)),
        num_nodes=n,
        x=torch.from_numpy(attr.toarray().astype(np.float32)),
        y=torch.from_numpy(labels),
        num_classes=int(labels.max()) + 1 if n else 0,
        files=digests,
    )
