"""`RawData`: what a loader reads from its files, before the shared clean-up, LCC and split steps."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from torch import Tensor


@dataclass
class RawData:
    """A loader's output.

    Attributes:
        name: canonical dataset name.
        edge_index: ``[2, E]`` int64 pairs as stored in the files (may hold duplicates, self-loops or only
            one direction: the loader pipeline symmetrises and cleans).
        num_nodes: N.
        x: ``[N, F]`` float32 features; y: ``[N]`` int64 labels (``-1`` unknown).
        num_classes: number of classes.
        public_split: ``(num_train, num_val, test_index)`` for Planetoid's public split.
        year: ``[N]`` publication year, for ogbn-arxiv's time split.
        files: raw file path -> sha256 of every file read.
    """

    name: str
    edge_index: Tensor
    num_nodes: int
    x: Tensor
    y: Tensor
    num_classes: int
    public_split: Optional[Tuple[int, int, Tensor]] = None
    year: Optional[Tensor] = None
    files: Dict[str, str] = field(default_factory=dict)
