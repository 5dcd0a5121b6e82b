"""Train/validation/test splits: Planetoid public, the paper's random protocol (and its fixed draw), OGB's
time split.

All functions return three boolean masks of shape ``[N]``. Nodes with an unknown label (``y < 0``, e.g.
CiteSeer's 15 isolated test ids) are never put in any split.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from torch import Tensor

Masks = Tuple[Tensor, Tensor, Tensor]

# The seed DIGL's code (after Shchur et al. 2018) fixes for drawing the development set, so that the test set
# is the same for every run and only the 20-per-class training draw varies with the seed. The BLEND code keeps
# the constant but draws the development set with each split's own seed instead (split="runner").
DEVELOPMENT_SEED = 1684992425
# The seed the official BLEND code's loader (``data.get_dataset``) draws both the development set and the
# training nodes with whenever it keeps the largest connected component (Cora's and CiteSeer's tuned
# options); its runner then redraws the split (see runner_split_seed).
FIXED_SPLIT_SEED = 12345


def runner_split_seed(seed: int) -> int:
    """The seed of the split the official BLEND runner trains on when numpy was seeded with ``seed``: it
    redraws the split of the largest component with ``numpy.random.randint(0, 1000)`` (the seed-12345
    split of its loader is overwritten)."""
    return int(np.random.RandomState(seed).randint(0, 1000))


def _mask(n: int, idx) -> Tensor:
    m = torch.zeros(n, dtype=torch.bool)
    m[torch.as_tensor(idx, dtype=torch.long)] = True
    return m


def planetoid_public_split(num_nodes: int, num_train: int, num_val: int, test_index: Tensor) -> Masks:
    """Kipf & Welling's split: nodes ``[0, num_train)`` train, the next ``num_val`` validation, the
    ``test.index`` nodes test (on graphs smaller than the real ones, validation stops before the test ids)."""
    train = _mask(num_nodes, range(num_train))
    test = _mask(num_nodes, test_index)
    val = _mask(num_nodes, range(num_train, min(num_train + num_val, num_nodes))) & ~test
    return train, val, test


def random_split(y: Tensor, seed: int, *, num_development: int = 1500, num_per_class: int = 20,
                 development_seed: int = DEVELOPMENT_SEED) -> Masks:
    """The paper's random-split protocol (Shchur et al. 2018, as in GRAND/BLEND's code).

    A development set of ``num_development`` labelled nodes is drawn with ``development_seed``; from it
    ``num_per_class`` training nodes per class are drawn with ``seed``; the rest of the development set
    is validation; every other labelled node is test. Apply it after taking the largest connected
    component, as the paper does.
    """
    y_np = y.cpu().numpy()
    labelled = np.flatnonzero(y_np >= 0)
    n = y_np.shape[0]
    if num_development > labelled.size:
        raise ValueError(f"num_development={num_development} exceeds the {labelled.size} labelled nodes")
    dev = np.random.RandomState(development_seed).choice(labelled, num_development, replace=False)
    rng = np.random.RandomState(seed)
    train = []
    for c in np.unique(y_np[labelled]):
        pool = dev[y_np[dev] == c]
        if pool.size < num_per_class:
            raise ValueError(f"class {c} has only {pool.size} nodes in the development set; "
                             f"cannot draw {num_per_class} training nodes per class")
        train.append(rng.choice(pool, num_per_class, replace=False))
    train_idx = np.concatenate(train)
    val_idx = np.setdiff1d(dev, train_idx)
    test_idx = np.setdiff1d(labelled, dev)
    return _mask(n, train_idx), _mask(n, val_idx), _mask(n, test_idx)


def time_split(year: Tensor, *, train_max: int = 2017, val_year: int = 2018) -> Masks:
    """OGB's ogbn-arxiv split: train ``year <= train_max``, validation ``year == val_year``, test later."""
    year = year.flatten()
    return year <= train_max, year == val_year, year > val_year
