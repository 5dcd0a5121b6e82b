"""`Dataset`: a graph with node features, labels and one train/validation/test split."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Union

import torch
from torch import Tensor

from ..graph import Graph
from ..validation import check_features


@dataclass
class Dataset:
    """A node-classification dataset.

    Attributes:
        name: canonical dataset name (``"cora"``, ``"ogbn-arxiv"``, ...).
        graph: CSR topology (symmetric, no self-loops, no multi-edges for the bundled loaders).
        x: node features ``[N, F]`` float32.
        y: labels ``[N]`` int64; ``-1`` marks a node whose label is unknown (never in a split).
        train_mask, val_mask, test_mask: ``[N]`` bool, pairwise disjoint.
        num_classes: number of classes.
        meta: provenance: split name and seed, whether the largest connected component was taken and the
            original id of each node (``node_map``), the raw files used and their sha256.
    """

    name: str
    graph: Graph
    x: Tensor
    y: Tensor
    train_mask: Tensor
    val_mask: Tensor
    test_mask: Tensor
    num_classes: int
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.graph.num_nodes
        check_features(self.x, n, f"{self.name}.x")
        for attr in ("y", "train_mask", "val_mask", "test_mask"):
            t = getattr(self, attr)
            if not isinstance(t, Tensor):
                raise TypeError(f"{self.name}.{attr} must be a torch.Tensor, got {type(t).__name__}")
            if t.shape != (n,):
                raise ValueError(f"{self.name}.{attr} must have shape [{n}], got {tuple(t.shape)}")
        self._check_labels_and_masks()
        if bool((self.train_mask & self.val_mask).any() | (self.train_mask & self.test_mask).any()
                | (self.val_mask & self.test_mask).any()):
            raise ValueError(f"{self.name}: train, validation and test masks overlap")
        split = self.train_mask | self.val_mask | self.test_mask
        if bool((self.y[split] < 0).any()):
            raise ValueError(f"{self.name}: a node without a label is in a split")

    def _check_labels_and_masks(self) -> None:
        if self.y.is_floating_point() or self.y.is_complex() or self.y.dtype == torch.bool:
            raise TypeError(f"{self.name}.y must hold integer class ids, got dtype {self.y.dtype}")
        for attr in ("train_mask", "val_mask", "test_mask"):
            mask = getattr(self, attr)
            if mask.dtype != torch.bool:
                hint = (" (it holds only 0 and 1: pass mask.bool())" if not mask.is_floating_point()
                        and bool(((mask == 0) | (mask == 1)).all()) else "")
                raise TypeError(f"{self.name}.{attr} must be a bool mask, got dtype {mask.dtype}{hint}; integer "
                                "tensors would index nodes instead of selecting them")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"{self.name}.num_classes must be an int >= 1, got {self.num_classes!r}")
        if not bool(self.train_mask.any()):
            raise ValueError(f"{self.name}.train_mask selects no node: there is nothing to train on")
        top = int(self.y.max()) if self.y.numel() else -1
        if top >= self.num_classes:
            raise ValueError(f"{self.name}.y holds class {top}, out of range for num_classes={self.num_classes}")

    @property
    def num_nodes(self) -> int:
        return self.graph.num_nodes

    @property
    def num_features(self) -> int:
        return self.x.shape[1]

    def to(self, device: Union[str, torch.device]) -> "Dataset":
        return Dataset(self.name, self.graph.to(device), self.x.to(device), self.y.to(device),
                       self.train_mask.to(device), self.val_mask.to(device), self.test_mask.to(device),
                       self.num_classes, dict(self.meta))

    def summary(self) -> Dict[str, Any]:
        """The figures ``beltrami-bench --dataset NAME`` prints."""
        return {
            "name": self.name,
            "nodes": self.num_nodes,
            "undirected_edges": self.graph.num_undirected_edges(),
            "features": self.num_features,
            "classes": self.num_classes,
            "split": self.meta.get("split"),
            "train": int(self.train_mask.sum()),
            "val": int(self.val_mask.sum()),
            "test": int(self.test_mask.sum()),
            "lcc": bool(self.meta.get("lcc", False)),
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (f"Dataset({self.name}, nodes={s['nodes']}, edges={self.graph.num_edges}, features={s['features']}, "
                f"classes={s['classes']}, split={s['split']} {s['train']}/{s['val']}/{s['test']})")
