import numpy as np
import pytest

import beltrami
from beltrami.datasets import files as F

from tests.fixtures import npz_bytes, register


def _write(tmp_path, monkeypatch, name="ms_academic_cs.npz", data=None):
    (tmp_path / "npz").mkdir(exist_ok=True)
    (tmp_path / "npz" / name).write_bytes(npz_bytes() if data is None else data)
    register(monkeypatch, tmp_path, [f"npz/{name}"])


@pytest.mark.parametrize("name, file", [("computers", "amazon_electronics_computers.npz"),
                                        ("photo", "amazon_electronics_photo.npz"),
                                        ("CoauthorCS", "ms_academic_cs.npz")])
def test_npz_fixture_loads_with_random_split_on_lcc(tmp_path, monkeypatch, name, file):
    _write(tmp_path, monkeypatch, file, npz_bytes(n=400, seed=1))
    ds = beltrami.load_dataset(name, root=tmp_path, num_development=150, num_per_class=10)
    assert ds.meta["lcc"] and ds.meta["split"] == "random"
    assert ds.graph.is_symmetric() and not ds.graph.has_self_loops()
    _, labels = ds.graph.connected_components()
    assert int(labels.max()) == 0  # one component
    assert int(ds.train_mask.sum()) == 10 * ds.num_classes and int(ds.val_mask.sum()) == 150 - 10 * ds.num_classes


def test_npz_features_match(tmp_path, monkeypatch):
    data = npz_bytes(n=60)
    _write(tmp_path, monkeypatch, data=data)
    import io

    ref = np.load(io.BytesIO(data), allow_pickle=True)
    ds = beltrami.load_dataset("coauthor-cs", root=tmp_path, lcc=False, num_development=30, num_per_class=2)
    import scipy.sparse as sp

    attr = sp.csr_matrix((ref["attr_data"], ref["attr_indices"], ref["attr_indptr"]), shape=ref["attr_shape"])
    np.testing.assert_array_equal(ds.x.numpy(), attr.toarray())
    np.testing.assert_array_equal(ds.y.numpy(), ref["labels"])


def test_npz_missing_array(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, data=npz_bytes(drop=("adj_indptr",)))
    with pytest.raises(beltrami.CorruptFileError, match="adj_indptr"):
        beltrami.load_dataset("coauthor-cs", root=tmp_path)


def test_npz_truncated(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, data=npz_bytes()[:300])
    with pytest.raises(beltrami.CorruptFileError, match="ms_academic_cs.npz"):
        beltrami.load_dataset("coauthor-cs", root=tmp_path)


def test_npz_absent_offline(tmp_path, offline):
    with pytest.raises(beltrami.MissingFileError, match=F.FILES["npz/amazon_electronics_photo.npz"].url):
        beltrami.load_dataset("photo", root=tmp_path)
