import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

import beltrami
from beltrami.datasets import files as F
from beltrami.datasets.planetoid import RestrictedUnpickler, restricted_load

from tests.fixtures import planetoid_relpaths, register, write_planetoid


def test_cora_embedded_default_needs_no_data_root(tmp_path, offline):
    ds = beltrami.load_dataset("cora", root=tmp_path)  # empty root: the package's own copy is used
    assert (ds.num_nodes, ds.graph.num_undirected_edges(), ds.num_features, ds.num_classes) == (2708, 5278, 1433, 7)
    assert (int(ds.train_mask.sum()), int(ds.val_mask.sum()), int(ds.test_mask.sum())) == (140, 500, 1000)
    assert ds.train_mask[:140].all() and ds.val_mask[140:640].all()
    assert ds.graph.is_symmetric() and not ds.graph.has_self_loops() and ds.graph.num_edges == 10556
    assert torch.bincount(ds.y).tolist() == [351, 217, 418, 818, 426, 298, 180]
    assert all(str(F.EMBEDDED_ROOT) in p for p in ds.meta["files"]) is False  # keys are relpaths
    assert set(ds.meta["files"]) == set(planetoid_relpaths("cora"))


def test_citeseer_isolated_test_ids(shared_data):
    ds = beltrami.load_dataset("citeseer", root=shared_data)
    assert (ds.num_nodes, ds.graph.num_undirected_edges(), ds.num_features, ds.num_classes) == (3327, 4552, 3703, 6)
    unknown = (ds.y < 0).nonzero().flatten()
    assert unknown.numel() == 15
    assert not (ds.train_mask | ds.val_mask | ds.test_mask)[unknown].any()
    assert ds.x[unknown].abs().sum() == 0
    assert torch.bincount(ds.y[ds.y >= 0]).tolist() == [249, 590, 668, 701, 596, 508]
    assert int(ds.test_mask.sum()) == 1000


# the raw file pickles scipy.sparse.csr.csr_matrix, a module path scipy now deprecates
@pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning")
def test_features_are_put_back_at_their_test_index(shared_data):
    """Independent check of the reordering: row k of tx belongs to node test.index[k]."""
    folder = shared_data / "planetoid"
    with open(folder / "ind.cora.tx", "rb") as f:
        tx = pickle.load(f, encoding="latin1").toarray()  # trusted file, plain pickle as a reference
    test_index = np.loadtxt(folder / "ind.cora.test.index", dtype=int)
    ds = beltrami.load_dataset("cora", root=shared_data)
    np.testing.assert_array_equal(ds.x[test_index].numpy(), tx)


@pytest.mark.parametrize("name, lcc_nodes", [("cora", 2485), ("citeseer", 2120)])
def test_lcc_size_from_first_principles(shared_data, name, lcc_nodes):
    with open(shared_data / "planetoid" / f"ind.{name}.graph", "rb") as f:
        adj_lists = pickle.load(f, encoding="latin1")
    n = max(adj_lists) + 1
    rows = [i for i, js in adj_lists.items() for _ in js]
    cols = [j for js in adj_lists.values() for j in js]
    a = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(a, directed=False)
    assert np.bincount(labels).max() == lcc_nodes
    ds = beltrami.load_dataset(name, root=shared_data, split="random")
    assert ds.num_nodes == lcc_nodes and ds.meta["lcc"]


def test_real_pubmed_lacks_allx_and_says_so(shared_data, offline):
    with pytest.raises(beltrami.MissingFileError) as err:
        beltrami.load_dataset("pubmed", root=shared_data)
    msg = str(err.value)
    assert "ind.pubmed.allx" in msg and "https://github.com/kimiyoung/planetoid/raw/master/data/ind.pubmed.allx" in msg
    assert str(shared_data) in msg


def test_pubmed_fixture_in_the_real_format(tmp_path, monkeypatch):
    written = write_planetoid(tmp_path, "pubmed")
    register(monkeypatch, tmp_path, planetoid_relpaths("pubmed"))
    ds = beltrami.load_dataset("pubmed", root=tmp_path)
    n = written["labels"].size
    assert ds.num_nodes == n and ds.num_classes == 3
    np.testing.assert_array_equal(ds.x.numpy(), written["x"].toarray())
    np.testing.assert_array_equal(ds.y.numpy(), written["labels"])
    assert ds.test_mask.nonzero().flatten().tolist() == sorted(written["test_ids"].tolist())
    assert int(ds.train_mask.sum()) == written["n_train"]
    assert ds.graph.is_symmetric() and not ds.graph.has_self_loops()


def test_isolated_fixture_like_citeseer(tmp_path, monkeypatch):
    written = write_planetoid(tmp_path, "citeseer", n=50, n_test=12, isolated=3, seed=4)
    register(monkeypatch, tmp_path, planetoid_relpaths("citeseer"))
    ds = beltrami.load_dataset("citeseer", root=tmp_path)
    assert sorted((ds.y < 0).nonzero().flatten().tolist()) == sorted(written["isolated"].tolist())


def test_malicious_pickle_is_refused_and_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    write_planetoid(tmp_path, "pubmed")
    (tmp_path / "planetoid" / "ind.pubmed.graph").write_bytes(pickle.dumps(Evil(), protocol=2))
    register(monkeypatch, tmp_path, planetoid_relpaths("pubmed"))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (posix|os)\.system"):
        beltrami.load_dataset("pubmed", root=tmp_path)
    assert not marker.exists()


def test_restricted_unpickler_refuses_builtins_eval(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        restricted_load(path)
    assert issubclass(RestrictedUnpickler, pickle.Unpickler)


def test_garbled_pickle_is_a_corrupt_file(tmp_path, monkeypatch):
    write_planetoid(tmp_path, "pubmed")
    (tmp_path / "planetoid" / "ind.pubmed.x").write_bytes(b"\x80\x02}q\x00(X\x01")  # truncated stream
    register(monkeypatch, tmp_path, planetoid_relpaths("pubmed"))
    with pytest.raises(beltrami.CorruptFileError, match="ind.pubmed.x"):
        beltrami.load_dataset("pubmed", root=tmp_path)


def test_bad_test_index_is_a_corrupt_file(tmp_path, monkeypatch):
    write_planetoid(tmp_path, "pubmed")
    (tmp_path / "planetoid" / "ind.pubmed.test.index").write_text("12\nnot-a-number\n")
    register(monkeypatch, tmp_path, planetoid_relpaths("pubmed"))
    with pytest.raises(beltrami.CorruptFileError, match="test.index"):
        beltrami.load_dataset("pubmed", root=tmp_path)


def test_wrong_checksum_names_the_file(tmp_path):
    folder = tmp_path / "planetoid"
    folder.mkdir()
    for rel in planetoid_relpaths("cora"):
        (tmp_path / rel).write_bytes((F.EMBEDDED_ROOT / rel).read_bytes())
    (folder / "ind.cora.y").write_bytes((folder / "ind.cora.y").read_bytes()[:-10])  # truncated
    with pytest.raises(beltrami.ChecksumError, match=r"ind\.cora\.y.*size 4044 bytes, expected 4054"):
        beltrami.load_dataset("cora", root=tmp_path)


def test_nan_feature_is_refused(tmp_path, monkeypatch):
    written = write_planetoid(tmp_path, "pubmed")
    x = written["x"][: written["n_train"]].tolil()
    x[0, 0] = np.nan
    (tmp_path / "planetoid" / "ind.pubmed.x").write_bytes(pickle.dumps(x.tocsr(), protocol=2))
    allx = sp.vstack([x.tocsr(), written["x"][written["n_train"]: 40 - 10]]).tocsr()
    (tmp_path / "planetoid" / "ind.pubmed.allx").write_bytes(pickle.dumps(allx, protocol=2))
    register(monkeypatch, tmp_path, planetoid_relpaths("pubmed"))
    with pytest.raises(ValueError, match="non-finite"):
        beltrami.load_dataset("pubmed", root=tmp_path)
