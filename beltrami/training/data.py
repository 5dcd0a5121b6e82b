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
        return load_dataset(data, root, split=cfg.data.split, seed=seed, lcc=cfg.data.lcc)
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple):
        if len(data) != 4 or len(data[3]) != 3:
            raise ValueError("a tuple must be (edge_index, x, y, (train_mask, val_mask, test_mask))")
        edge_index, x, y, (tr, va, te) = data
        x = torch.as_tensor(x)
        if x.dim() != 2:
            raise ValueError(f"x must have shape [num_nodes, num_features], got {tuple(x.shape)}")
        edge_index = torch.as_tensor(edge_index)
        if edge_index.numel() and int(edge_index.max()) >= x.shape[0]:
            raise ValueError(f"edge_index refers to node {int(edge_index.max())}, but x has {x.shape[0]} rows (one "
                             "per node)")
        graph = Graph.from_edge_index(edge_index, x.shape[0]).symmetrize().remove_self_loops()
        return _dataset("tensors", graph, x, y, tr, va, te)
    if all(hasattr(data, a) for a in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask")):
        graph = Graph.from_pyg(data).symmetrize().remove_self_loops()
        return _dataset(getattr(data, "name", "pyg"), graph, data.x, data.y, data.train_mask, data.val_mask,
                        data.test_mask)
    raise TypeError(f"cannot train on a {type(data).__name__}: give a dataset name, a beltrami.Dataset, a PyG "
                    "Data with train/val/test masks, or (edge_index, x, y, masks)")


def _dataset(name, graph, x, y, tr, va, te) -> Dataset:
    y = _labels(torch.as_tensor(y).flatten())
    masks = [_mask(torch.as_tensor(m), graph.num_nodes, what) for m, what in
             ((tr, "train_mask"), (va, "val_mask"), (te, "test_mask"))]
    return Dataset(str(name), graph, torch.as_tensor(x).float(), y, *masks,
                   int(y.max()) + 1 if y.numel() else 0, {"split": "given"})


def _labels(y: Tensor) -> Tensor:
    """Class ids as int64; floats only where every value is a whole number (0.7 is no class)."""
    if y.is_floating_point():
        if not bool((y == y.round()).all()):
            bad = y[y != y.round()][0].item()
            raise ValueError(f"y must hold integer class ids, got the value {bad:g} (dtype {y.dtype})")
    elif y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"y must hold integer class ids, got dtype {y.dtype}")
    return y.long()


def _mask(mask: Tensor, n: int, name: str) -> Tensor:
    """A ``[n]`` bool mask from a bool tensor or a 0/1 one of ``n`` entries (index lists are refused: a
    length-n list of node ids and a 0/1 mask cannot be told apart in general)."""
    if mask.dtype == torch.bool:
        return mask
    if mask.shape == (n,) and not mask.is_complex() and bool(((mask == 0) | (mask == 1)).all()):
        return mask.bool()
    raise ValueError(f"{name} must be a bool (or 0/1) mask of shape [{n}], got dtype {mask.dtype} and shape "
                     f"{tuple(mask.shape)}; for node ids, build the mask: m = torch.zeros({n}, dtype=torch.bool); "
                     "m[ids] = True")


def normalise_features(x: Tensor, norm: Optional[str]) -> Tensor:
    """``x`` as the model sees it: unchanged (``norm=None``), or with each row divided by its sum
    (``"row"``, the GCN/GAT papers' preprocessing; rows summing to 0 stay 0). Shapes: ``[N, F] -> [N, F]``."""
    check_choice(norm, FEATURE_NORMS, "feature_norm")
    if norm is None:
        return x
    total = x.sum(dim=1, keepdim=True)
    return x / torch.where(total == 0, torch.ones_like(total), total)
