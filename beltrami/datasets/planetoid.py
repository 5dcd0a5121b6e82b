"""Planetoid Cora, CiteSeer and PubMed from the original ``ind.<name>.*`` files (Yang et al. 2016).

The files are Python-2 pickles. They are read with :class:`RestrictedUnpickler`, which admits only the
numpy/scipy/collections names these files use; a pickle that asks for anything else is refused before any
of it runs. The assembly follows Kipf & Welling's (and PyG's) reader: test rows are put back at their
``test.index`` positions; CiteSeer's 15 test ids that have no row in ``tx`` (isolated nodes) get zero
features and the label ``-1`` (unknown) instead of a made-up class.
"""
from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import scipy.sparse as sp
import torch

from ..paths import PathLike
from .files import CorruptFileError, fetch_many
from .raw import RawData

NAMES = ("cora", "citeseer", "pubmed")
PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")


class _CSRState:
    """Stand-in for ``scipy.sparse.csr_matrix`` while unpickling: it only stores the pickled state, which
    :func:`_to_numpy` turns into a real matrix. Nothing of scipy runs during unpickling."""

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.state = state


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as r  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as r
    return r


def _allowed() -> Dict[tuple, Any]:
    import _codecs

    rec = _reconstruct()
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "defaultdict"): collections.defaultdict,
        ("__builtin__", "list"): list,  # Python 2 name
        ("builtins", "list"): list,
        ("_codecs", "encode"): _codecs.encode,  # Python 3 protocol-2 pickles of bytes
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = rec
    for mod in ("scipy.sparse.csr", "scipy.sparse._csr"):
        allowed[(mod, "csr_matrix")] = _CSRState
    return allowed


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the allowed list; nothing of it was executed."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals Planetoid files need; anything else raises
    :class:`UnsafePickleError` (a ``pickle.UnpicklingError``) naming the refused global."""

    def __init__(self, file, *, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="latin1")
        self.source = source
        self.allowed = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refusing to load global {module}.{name}; Planetoid files only need numpy "
                "arrays, scipy CSR matrices and defaultdict adjacency lists"
            ) from None


def restricted_load(path: PathLike) -> Any:
    data = Path(path).read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=str(path)).load()
    except UnsafePickleError:
        raise
    except Exception as err:  # truncated or garbled pickle stream
        raise CorruptFileError(f"{path} is not a readable Planetoid pickle ({type(err).__name__}: {err})") from err


def _to_numpy(obj: Any, path: Path) -> Any:
    if isinstance(obj, _CSRState):
        st = obj.state
        shape = st.get("_shape", st.get("shape"))
        try:
            return sp.csr_matrix((st["data"], st["indices"], st["indptr"]), shape=shape)
        except Exception as err:
            raise CorruptFileError(f"{path}: malformed CSR matrix in pickle ({err})") from err
    return obj


def load_planetoid(name: str, root: Optional[PathLike] = None, download: bool = True) -> RawData:
    """Read the eight raw files of ``name`` (cora, citeseer, pubmed) into a :class:`RawData`."""
    if name not in NAMES:
        raise ValueError(f"unknown Planetoid dataset {name!r}; valid: {', '.join(NAMES)}")
    fetched, digests = fetch_many([f"planetoid/ind.{name}.{p}" for p in PARTS], root, download=download)
    paths = {p: fetched[f"planetoid/ind.{name}.{p}"] for p in PARTS}
    obj = {p: _to_numpy(restricted_load(paths[p]), paths[p]) for p in PARTS if p != "test.index"}
    try:
        test_index = np.loadtxt(paths["test.index"], dtype=np.int64, ndmin=1)
    except ValueError as err:
        raise CorruptFileError(f"{paths['test.index']}: not one integer per line ({err})") from err

    for key, cls in (("x", sp.spmatrix), ("tx", sp.spmatrix), ("allx", sp.spmatrix), ("y", np.ndarray),
                     ("ty", np.ndarray), ("ally", np.ndarray), ("graph", dict)):
        if not isinstance(obj[key], cls):
            raise CorruptFileError(f"{paths[key]}: expected {cls.__name__}, found {type(obj[key]).__name__}")
    tx, ty, allx, ally = obj["tx"], obj["ty"], obj["allx"], obj["ally"]
    if tx.shape[0] != test_index.size or ty.shape[0] != test_index.size:
        raise CorruptFileError(f"{paths['tx']}: {tx.shape[0]} test rows but test.index lists {test_index.size}")

    sorted_test = np.sort(test_index)
    lo, hi = int(sorted_test[0]), int(sorted_test[-1])
    # CiteSeer: ids in [lo, hi] missing from test.index are isolated nodes with no row in tx/ty.
    tx_ext = sp.lil_matrix((hi - lo + 1, tx.shape[1]), dtype=np.float32)
    tx_ext[sorted_test - lo, :] = tx
    ty_ext = np.zeros((hi - lo + 1, ty.shape[1]), dtype=ty.dtype)
    ty_ext[sorted_test - lo, :] = ty

    x = sp.vstack([allx, tx_ext.tocsr()]).tocsr().astype(np.float32)
    onehot = np.vstack([ally, ty_ext])
    y = np.where(onehot.sum(1) > 0, onehot.argmax(1), -1).astype(np.int64)
    # Rows of tx are in test.index order; move each to its node id.
    x = x[_reorder(x.shape[0], test_index, sorted_test)]
    y = y[_reorder(y.shape[0], test_index, sorted_test)]

    graph_dict = obj["graph"]
    n = max(x.shape[0], max(graph_dict) + 1 if graph_dict else 0)
    if n != x.shape[0]:
        raise CorruptFileError(f"{paths['graph']}: adjacency lists name node {n - 1} but features cover "
                               f"{x.shape[0]} nodes")
    rows = np.fromiter((k for k, v in graph_dict.items() for _ in v), dtype=np.int64)
    cols = np.fromiter((c for v in graph_dict.values() for c in v), dtype=np.int64)
    return RawData(
        name=name,
        edge_index=torch.from_numpy(np.stack([rows, cols])),
        num_nodes=n,
        x=torch.from_numpy(x.toarray()),
        y=torch.from_numpy(y),
        num_classes=onehot.shape[1],
        public_split=(obj["y"].shape[0], 500, torch.from_numpy(test_index)),
        files=digests,
    )


def _reorder(n: int, test_index: np.ndarray, sorted_test: np.ndarray) -> np.ndarray:
    """Permutation ``perm`` with ``out = a[perm]`` equal to Kipf's ``a[test_index] = a[sorted_test]``."""
    perm = np.arange(n)
    perm[test_index] = sorted_test
    return perm
