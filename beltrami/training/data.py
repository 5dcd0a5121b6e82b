"""Turn what a user hands to :func:`beltrami.fit` into a :class:`~beltrami.Dataset`."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from ..datasets import Dataset, load_dataset
from ..graph import Graph
from ..validation import check_choice
from .config import FEATURE_NORMS


def as_dataset(data: Any, cfg, seed: int, root: Optional[str] = None) -> Dataset:
    """A name (loaded with the config's split/LCC and this seed), a Dataset, a PyG ``Data`` with masks, or
    ``(edge_index, x, y, (train_mask, val_mask, test_mask))``."""
    if isinstance(data, str):
        return load_dataset(data, root, split=cfg.split, seed=seed, lcc=cfg.lcc)
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple):
        if len(data) != 4 or len(data[3]) != 3:
            raise ValueError("a tuple must be (edge_index, x, y, (train_mask, val_mask, test_mask))")
        edge_index, x, y, (tr, va, te) = data
        graph = Graph.from_edge_index(edge_index, x.shape[0]).symmetrize().remove_self_loops()
        return _dataset("tensors", graph, x, y, tr, va, te)
    if all(hasattr(data, a) for a in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask")):
        graph = Graph.from_pyg(data).symmetrize().remove_self_loops()
        return _dataset(getattr(data, "name", "pyg"), graph, data.x, data.y, data.train_mask, data.val_mask,
                        data.test_mask)
    raise TypeError(f"cannot train on a {type(data).__name__}: give a dataset name, a beltrami.Dataset, a PyG "
                    "Data with train/val/test masks, or (edge_index, x, y, masks)")


def _dataset(name, graph, x, y, tr, va, te) -> Dataset:
    y = torch.as_tensor(y).long().flatten()
    return Dataset(str(name), graph, torch.as_tensor(x).float(), y, torch.as_tensor(tr).bool(),
                   torch.as_tensor(va).bool(), torch.as_tensor(te).bool(), int(y.max()) + 1, {"split": "given"})


def normalise_features(x: Tensor, norm: Optional[str]) -> Tensor:
    """``x`` as the model sees it: unchanged (``norm=None``), or with each row divided by its sum
    (``"row"``, the GCN/GAT papers' preprocessing; rows summing to 0 stay 0). Shapes: ``[N, F] -> [N, F]``."""
    check_choice(norm, FEATURE_NORMS, "feature_norm")
    if norm is None:
        return x
    total = x.sum(dim=1, keepdim=True)
    return x / torch.where(total == 0, torch.ones_like(total), total)
