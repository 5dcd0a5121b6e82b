"""Rewiring while training: the kNN graph rebuilt from learned coordinates, as the official runner does."""
import sys

import torch

import beltrami


def test_dynamic_rewiring_rebuilds_the_graph(small, monkeypatch):
    fit_module = sys.modules["beltrami.training.fit"]  # the name beltrami.training.fit is the function
    original = fit_module.dynamic_rewire
    graphs = []

    def recording(cfg, model, x, pos):
        before = model.function.col.clone()
        original(cfg, model, x, pos)
        graphs.append((before, model.function.col.clone()))

    monkeypatch.setattr(fit_module, "dynamic_rewire", recording)
    beltrami.fit(small, model="blend-knn", rewire_on="feat", rewire_k=4, rewire_every=2, epochs=5, preset="fast",
                 progress=False)
    assert len(graphs) == 2  # before the 2nd and the 4th epoch
    before, after = graphs[0]
    assert before.numel() != after.numel() or not torch.equal(before, after)  # learned coordinates, new graph


def test_official_knn_rewiring_is_each_nodes_k_nearest_in_z0(small, monkeypatch):
    """The official runner's kNN rewiring (the paper preset of blend-knn): the input graph first, then each
    node linked to its k nearest nodes in the encoder's output by Euclidean distance, one direction, itself
    among them; checked against dense float64 distances."""
    fit_module = sys.modules["beltrami.training.fit"]
    original, seen = fit_module.dynamic_rewire, []

    def recording(cfg, model, x, pos):
        seen.append((model.function.row.clone(), model.function.col.clone()))
        original(cfg, model, x, pos)
        with torch.no_grad():
            model.eval()
            z0 = model.encode(x, pos).double()
        d = torch.cdist(z0, z0)
        d.fill_diagonal_(float("inf"))
        k = 5
        ref = torch.cat([d.topk(k, dim=1, largest=False).indices, torch.arange(len(z0))[:, None]], dim=1)
        ours = [set() for _ in range(len(z0))]
        for r, c in zip(model.function.row.tolist(), model.function.col.tolist()):
            ours[r].add(c)
        assert ours == [set(row) for row in ref.tolist()]

    monkeypatch.setattr(fit_module, "dynamic_rewire", recording)
    beltrami.fit(small, preset="fast", model="blend-knn", pos_encoding="ppr", ppr_topk=None, rewire=None,
                 rewire_every=3, rewire_on="both", rewire_metric="euclidean", rewire_symmetric=False, rewire_k=5,
                 self_loops=True, epochs=4, progress=False)
    assert len(seen) == 1  # before the 3rd epoch, on the input graph until then
    row, col = seen[0]
    assert torch.equal(torch.stack([row, col]), small.graph.add_self_loops().edge_index)

