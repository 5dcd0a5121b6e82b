import gzip

import numpy as np
import pytest
import torch

import beltrami
from beltrami.datasets.ogbn_arxiv import RAW

from tests.fixtures import arxiv_members, register, write_arxiv

RELS = [f"ogbn_arxiv/raw/{f}" for f in RAW]


def _setup(tmp_path, monkeypatch, members):
    write_arxiv(tmp_path, members)
    register(monkeypatch, tmp_path, RELS)


def test_arxiv_fixture_time_split(tmp_path, monkeypatch):
    members = arxiv_members()
    _setup(tmp_path, monkeypatch, members)
    ds = beltrami.load_dataset("arxiv", root=tmp_path)
    year = np.loadtxt(gzip.open(tmp_path / "ogbn_arxiv/raw/node_year.csv.gz", "rt"), dtype=int)
    assert ds.meta["split"] == "time" and not ds.meta["lcc"]
    assert torch.equal(ds.train_mask, torch.from_numpy(year <= 2017))
    assert torch.equal(ds.val_mask, torch.from_numpy(year == 2018))
    assert torch.equal(ds.test_mask, torch.from_numpy(year >= 2019))
    assert ds.num_classes == 40 and ds.num_features == 128 and ds.graph.is_symmetric()
    edges = np.loadtxt(gzip.open(tmp_path / "ogbn_arxiv/raw/edge.csv.gz", "rt"), dtype=int, delimiter=",")
    pairs = {(a, b) for a, b in edges if a != b} | {(b, a) for a, b in edges if a != b}
    assert ds.graph.num_edges == len(pairs)
    # second load comes from the processed cache and is identical
    again = beltrami.load_dataset("arxiv", root=tmp_path)
    assert torch.equal(again.x, ds.x) and again.graph == ds.graph


def test_arxiv_truncated_gzip(tmp_path, monkeypatch):
    members = arxiv_members()
    members["node-feat.csv.gz"] = members["node-feat.csv.gz"][:200]
    _setup(tmp_path, monkeypatch, members)
    with pytest.raises(beltrami.CorruptFileError, match="node-feat.csv.gz"):
        beltrami.load_dataset("ogbn-arxiv", root=tmp_path)


def test_arxiv_edge_count_mismatch(tmp_path, monkeypatch):
    members = arxiv_members()
    members["num-edge-list.csv.gz"] = gzip.compress(b"999\n")
    _setup(tmp_path, monkeypatch, members)
    with pytest.raises(beltrami.CorruptFileError, match="num-edge-list says 999"):
        beltrami.load_dataset("ogbn-arxiv", root=tmp_path)


def test_real_arxiv_files_give_ogb_split_sizes(shared_data):
    year = np.loadtxt(gzip.open(shared_data / "ogbn_arxiv/raw/node_year.csv.gz", "rt"), dtype=int)
    from beltrami.datasets.splits import time_split

    sizes = [int(m.sum()) for m in time_split(torch.from_numpy(year))]
    assert sizes == [90941, 29799, 48603]


def test_real_arxiv_lacks_edges_offline(shared_data, offline):
    with pytest.raises(beltrami.MissingFileError, match=r"edge\.csv\.gz.*arxiv\.zip"):
        beltrami.load_dataset("ogbn-arxiv", root=shared_data)
