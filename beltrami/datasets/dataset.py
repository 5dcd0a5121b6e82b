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
            if t.shape != (n,):
                raise ValueError(f"{self.name}.{attr} must have shape [{n}], got {tuple(t.shape)}")
        if bool((self.train_mask & self.val_mask).any() | (self.train_mask & self.test_mask).any()
                | (self.val_mask & self.test_mask).any()):
            raise ValueError(f"{self.name}: train, validation and test masks overlap")
        split = self.train_mask | self.val_mask | self.test_mask
        if bool((self.y[split] < 0).any()):
            raise ValueError(f"{self.name}: a node without a label is in a split")

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
