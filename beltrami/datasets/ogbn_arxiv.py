"""ogbn-arxiv (Hu et al. 2020) from OGB's raw layout: ``raw/edge.csv.gz`` (directed citation pairs),
``raw/node-feat.csv.gz`` (128 floats a node), ``raw/node-label.csv.gz``, ``raw/node_year.csv.gz`` and the
two count files. The split is OGB's time split, rebuilt from the years (train <= 2017, valid 2018,
test >= 2019: 90941 / 29799 / 48603 nodes).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..cache import cache_key, cached
from ..paths import PathLike
from .files import CorruptFileError, fetch_many
from .raw import RawData

RAW = ("edge.csv.gz", "node-feat.csv.gz", "node-label.csv.gz", "node_year.csv.gz",
       "num-node-list.csv.gz", "num-edge-list.csv.gz")
NUM_CLASSES = 40


def _read_csv(path: Path, dtype, columns: int) -> np.ndarray:
    try:
        with gzip.open(path, "rt") as f:
            a = np.loadtxt(f, delimiter=",", dtype=dtype, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise CorruptFileError(f"{path} is truncated or not a gzip CSV ({type(err).__name__}: {err})") from err
    if a.shape[1] != columns:
        raise CorruptFileError(f"{path}: expected {columns} column(s), found {a.shape[1]}")
    return a


def load_ogbn_arxiv(root: Optional[PathLike] = None, download: bool = True, force_reload: bool = False) -> RawData:
    """Read ogbn-arxiv; the parsed arrays are cached (keyed by the files' sha256), since parsing the
    72 MB feature CSV takes a while."""
    rel = {f: f"ogbn_arxiv/raw/{f}" for f in RAW}
    # The small, checksummed files first: a missing edge/feature file is then the only error left.
    paths, digests = fetch_many([rel[f] for f in reversed(RAW)], root, download=download)
    p = {f: paths[rel[f]] for f in RAW}
    arrays = cached("ogbn-arxiv", cache_key(sorted(digests.values())), lambda: _parse(p), force=force_reload)
    return RawData(name="ogbn-arxiv", num_nodes=arrays["x"].shape[0], num_classes=NUM_CLASSES,
                   files=digests, **arrays)


def _parse(p: dict) -> dict:
    n = int(_read_csv(p["num-node-list.csv.gz"], np.int64, 1)[0, 0])
    m = int(_read_csv(p["num-edge-list.csv.gz"], np.int64, 1)[0, 0])
    edges = _read_csv(p["edge.csv.gz"], np.int64, 2)
    feat = _read_csv(p["node-feat.csv.gz"], np.float32, 128)
    label = _read_csv(p["node-label.csv.gz"], np.int64, 1)[:, 0]
    year = _read_csv(p["node_year.csv.gz"], np.int64, 1)[:, 0]
    if edges.shape[0] != m:
        raise CorruptFileError(f"{p['edge.csv.gz']}: {edges.shape[0]} edges, num-edge-list says {m}")
    for name, a in (("node-feat.csv.gz", feat), ("node-label.csv.gz", label), ("node_year.csv.gz", year)):
        if a.shape[0] != n:
            raise CorruptFileError(f"{p[name]}: {a.shape[0]} rows, num-node-list says {n}")
    # OGB lists (source, target) citation pairs; the loader pipeline symmetrises them.
    return {"edge_index": torch.from_numpy(np.ascontiguousarray(edges.T)), "x": torch.from_numpy(feat),
            "y": torch.from_numpy(label), "year": torch.from_numpy(year)}
