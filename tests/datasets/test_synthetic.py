import subprocess
import sys

import pytest
import torch

import beltrami
from beltrami.datasets import csbm


def test_deterministic_per_seed():
    a, b, c = csbm(num_nodes=500, seed=1), csbm(num_nodes=500, seed=1), csbm(num_nodes=500, seed=2)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.edge_index, c.edge_index)


@pytest.mark.parametrize("h", [0.1, 0.5, 0.9])
def test_homophily_and_degree(h):
    raw = csbm(num_nodes=4000, avg_degree=10, num_classes=5, homophily=h, seed=0)
    src, dst = raw.edge_index
    measured = (raw.y[src] == raw.y[dst]).float().mean().item()
    assert abs(measured - h) < 0.02  # 20,000 edges: binomial std 0.0035
    assert raw.edge_index.shape[1] == 20_000
    assert torch.bincount(raw.y).tolist() == [800] * 5


def test_feature_signal():
    """Class means carry the label: nearest-mean classification is far above chance with signal,
    at chance without it."""
    def nearest_mean_acc(signal):
        raw = csbm(num_nodes=3000, num_classes=3, num_features=16, signal=signal, seed=0)
        means = torch.stack([raw.x[raw.y == c].mean(0) for c in range(3)])
        return (torch.cdist(raw.x, means).argmin(1) == raw.y).float().mean().item()

    assert nearest_mean_acc(3.0) > 0.8
    assert abs(nearest_mean_acc(0.0) - 1 / 3) < 0.1


def test_load_synthetic_dataset_and_errors():
    ds = beltrami.load_dataset("synthetic", num_nodes=800, num_classes=4, avg_degree=6, seed=3)
    assert ds.meta["lcc"] and ds.graph.is_symmetric() and not ds.graph.has_self_loops()
    assert int(ds.train_mask.sum()) == 80
    with pytest.raises(ValueError, match="homophily"):
        csbm(homophily=1.5)
    with pytest.raises(ValueError, match="num_classes"):
        csbm(num_nodes=3, num_classes=5)
    with pytest.raises(ValueError, match="unknown option.*'nodes'"):
        beltrami.load_dataset("synthetic", nodes=10)


@pytest.mark.slow
def test_arxiv_sized_instance_time_and_memory():
    """ogbn-arxiv's size in under 30 s and 2 GiB (peak RSS of a fresh process, torch import included)."""
    code = ("import resource, time, beltrami; t = time.time(); "
            "ds = beltrami.load_dataset('synthetic-arxiv'); "
            "print(time.time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, ds.num_nodes)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    seconds, gib, nodes = float(out[0]), float(out[1]), int(out[2])
    assert nodes > 160_000 and seconds < 30 and gib < 2.0
