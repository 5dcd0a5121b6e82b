"""Writers of small dataset files in the exact raw formats of the real ones (Planetoid pickles, gnn-benchmark
npz, OGB gzip CSVs), and a helper that registers their sha256 so the loaders accept them."""
from __future__ import annotations

import collections
import gzip
import io
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Dict

import numpy as np
import scipy.sparse as sp

from beltrami.datasets import files as F


def register(monkeypatch, root: Path, relpaths, **spec_changes) -> None:
    """Make ``FILES`` expect the sha256 (and size) of the fixture files under ``root``."""
    for rel in relpaths:
        path = root / rel
        monkeypatch.setitem(F.FILES, rel, replace(F.FILES[rel], sha256=F.sha256_of(path),
                                                   size=path.stat().st_size, **spec_changes))


def _pickle(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_planetoid(root: Path, name: str = "pubmed", n: int = 40, n_feat: int = 6, n_cls: int = 3,
                    n_train: int = 6, n_test: int = 10, isolated: int = 0, seed: int = 0) -> Dict[str, object]:
    """Write ``ind.<name>.*`` for a random graph: ``n - n_test - isolated`` nodes in allx, then the test ids
    (``isolated`` of them without a row, as CiteSeer). Returns the arrays written, for checks."""
    rng = np.random.RandomState(seed)
    folder = root / "planetoid"
    folder.mkdir(parents=True, exist_ok=True)
    n_all = n - n_test - isolated
    feats = sp.random(n, n_feat, density=0.5, format="csr", random_state=rng, dtype=np.float32)
    feats.data[:] = 1.0
    labels = rng.randint(n_cls, size=n)
    onehot = np.eye(n_cls, dtype=np.int32)[labels]
    test_ids = np.arange(n_all, n)
    dropped = rng.choice(test_ids[1:-1], isolated, replace=False) if isolated else np.array([], dtype=np.int64)
    test_ids = np.setdiff1d(test_ids, dropped)
    file_order = rng.permutation(test_ids)  # test.index is not sorted in the real files
    graph = collections.defaultdict(list)
    for _ in range(2 * n):
        i, j = rng.randint(n, size=2)
        if i in dropped or j in dropped:
            continue
        graph[int(i)].append(int(j))
    for i in range(n):
        graph[i]  # every node has a key, as in the real files  # noqa: B018
    _pickle(folder / f"ind.{name}.x", feats[:n_train])
    _pickle(folder / f"ind.{name}.y", onehot[:n_train])
    _pickle(folder / f"ind.{name}.allx", feats[:n_all])
    _pickle(folder / f"ind.{name}.ally", onehot[:n_all])
    _pickle(folder / f"ind.{name}.tx", feats[file_order])
    _pickle(folder / f"ind.{name}.ty", onehot[file_order])
    _pickle(folder / f"ind.{name}.graph", graph)
    (folder / f"ind.{name}.test.index").write_text("".join(f"{i}\n" for i in file_order))
    return {"x": feats, "labels": labels, "test_ids": test_ids, "isolated": dropped, "graph": graph,
            "n_train": n_train}


def planetoid_relpaths(name: str):
    return [f"planetoid/ind.{name}.{p}" for p in ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")]


def npz_bytes(n: int = 60, n_feat: int = 8, n_cls: int = 3, seed: int = 0, drop=()) -> bytes:
    """A gnn-benchmark style .npz: CSR parts of adj and attr, labels, and object arrays of names."""
    rng = np.random.RandomState(seed)
    adj = sp.random(n, n, density=0.08, format="csr", random_state=rng, dtype=np.float32)
    adj.data[:] = 1.0
    attr = sp.random(n, n_feat, density=0.4, format="csr", random_state=rng, dtype=np.float32)
    arrays = {
        "adj_data": adj.data, "adj_indices": adj.indices, "adj_indptr": adj.indptr, "adj_shape": np.array(adj.shape),
        "attr_data": attr.data, "attr_indices": attr.indices, "attr_indptr": attr.indptr,
        "attr_shape": np.array(attr.shape), "labels": rng.randint(n_cls, size=n),
        "class_names": np.array([f"class {c}" for c in range(n_cls)], dtype=object),
    }
    for k in drop:
        arrays.pop(k)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _gz_csv(rows) -> bytes:
    text = "".join(",".join(str(v) for v in np.atleast_1d(r)) + "\n" for r in rows)
    return gzip.compress(text.encode())


def arxiv_members(n: int = 50, m: int = 120, seed: int = 0) -> Dict[str, bytes]:
    """OGB's raw ogbn-arxiv files for a tiny graph: name -> gzip bytes."""
    rng = np.random.RandomState(seed)
    edges = rng.randint(n, size=(m, 2))
    feat = rng.randn(n, 128).astype(np.float32)
    return {
        "edge.csv.gz": _gz_csv(edges),
        "node-feat.csv.gz": _gz_csv(np.round(feat, 6)),
        "node-label.csv.gz": _gz_csv(rng.randint(40, size=n)),
        "node_year.csv.gz": _gz_csv(rng.randint(2010, 2021, size=n)),
        "num-node-list.csv.gz": _gz_csv([n]),
        "num-edge-list.csv.gz": _gz_csv([m]),
    }


def write_arxiv(root: Path, members: Dict[str, bytes]) -> None:
    folder = root / "ogbn_arxiv" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in members.items():
        (folder / name).write_bytes(data)


def arxiv_zip(members: Dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(f"arxiv/raw/{name}", data)
    return buf.getvalue()
