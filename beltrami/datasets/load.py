"""`load_dataset`: one entry point for every dataset, with the shared clean-up, LCC and split steps.

Pipeline: files -> loader (``RawData``) -> symmetric graph without self-loops or multi-edges -> optional
largest connected component -> split masks -> :class:`Dataset`.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Optional

from ..graph import Graph
from ..paths import PathLike
from ..validation import check_choice, check_int, check_options
from . import splits as S
from .dataset import Dataset
from .gnn_benchmark import FILENAMES as NPZ_FILES
from .gnn_benchmark import load_npz
from .ogbn_arxiv import RAW as ARXIV_FILES
from .ogbn_arxiv import load_ogbn_arxiv
from .planetoid import PARTS, load_planetoid
from .raw import RawData
from .synthetic import ARXIV_SIZE, csbm

# name -> (family, default split)
DATASETS: Dict[str, tuple] = {
    "cora": ("planetoid", "public"),
    "citeseer": ("planetoid", "public"),
    "pubmed": ("planetoid", "public"),
    "computers": ("npz", "random"),
    "photo": ("npz", "random"),
    "coauthor-cs": ("npz", "random"),
    "ogbn-arxiv": ("ogb", "time"),
    "synthetic": ("synthetic", "random"),
    "synthetic-arxiv": ("synthetic", "random"),
}
ALIASES = {
    "amazoncomputers": "computers", "amazonelectronicscomputers": "computers",
    "amazonphoto": "photo", "amazonelectronicsphoto": "photo",
    "coauthorcs": "coauthor-cs", "cs": "coauthor-cs", "msacademiccs": "coauthor-cs",
    "arxiv": "ogbn-arxiv", "ogbnarxiv": "ogbn-arxiv", "syntheticarxiv": "synthetic-arxiv",
}
SPLITS = ("public", "random", "fixed", "runner", "time")
RANDOM_PROTOCOL = ("random", "fixed", "runner")  # the splits drawn by the paper's random protocol (on the LCC by default)
RANDOM_SPLIT_OPTIONS = ("num_development", "num_per_class", "development_seed")
SYNTHETIC_OPTIONS = tuple(p for p in inspect.signature(csbm).parameters if p not in ("seed", "name"))


def canonical_name(name: str) -> str:
    """Map a dataset name or alias (any case, ``-``/``_``/space ignored) to its canonical name."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    for canon in DATASETS:
        if key == canon.replace("-", ""):
            return canon
    if key in ALIASES:
        return ALIASES[key]
    raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")


def load_dataset(name: str, root: Optional[PathLike] = None, split: Optional[str] = None, seed: int = 0, *,
                 lcc: Optional[bool] = None, download: bool = True, force_reload: bool = False,
                 **options: Any) -> Dataset:
    """Load a node-classification dataset with one of its splits.

    Args:
        name: ``cora``, ``citeseer``, ``pubmed``, ``computers``, ``photo``, ``coauthor-cs``, ``ogbn-arxiv``,
            ``synthetic`` (a CSBM; its parameters go in ``options``) or ``synthetic-arxiv`` (a CSBM of
            ogbn-arxiv's size). Aliases such as ``CoauthorCS`` or ``arxiv`` work.
        root: data root (default ``$BELTRAMI_DATA``, then ``~/.cache/beltrami/data``); Cora falls back to
            the copy embedded in the package.
        split: ``public`` (Planetoid's fixed split; default for Cora/CiteSeer/PubMed), ``random`` (the
            paper's protocol: 20 labelled nodes per class from a 1500-node development set, 5000 for
            Coauthor CS; default for the others), ``fixed`` (the random protocol drawn once, development
            set and training nodes both with seed 12345, whatever ``seed`` is: the split the official BLEND
            code's data loader draws whenever it takes the largest component), ``runner`` (what the official
            runner then trains on: it redraws that split, development set and training nodes both, with
            seed ``numpy.random.RandomState(seed).randint(1000)``, so each seed has its own split), or
            ``time`` (ogbn-arxiv's default).
        seed: seed of the random split's training draw (and of the synthetic graph).
        lcc: keep only the largest connected component; default True for the random and fixed splits (as
            in the paper), False otherwise.
        download: fetch missing files from their canonical URLs.
        force_reload: ignore cached processed tensors.
        options: random-split options (``num_development``, ``num_per_class``, ``development_seed``) and,
            for ``synthetic``, the :func:`~beltrami.datasets.synthetic.csbm` parameters.

    Returns:
        A :class:`Dataset` whose graph is symmetric, without self-loops or multi-edges.
    """
    canon = canonical_name(name)
    family, default_split = DATASETS[canon]
    split = default_split if split is None else split
    check_choice(split, SPLITS, "split")
    seed = check_int(seed, "seed", 0)
    if split == "public" and family != "planetoid":
        raise ValueError(f"split='public' exists only for Planetoid datasets, not {canon}")
    if split == "time" and canon != "ogbn-arxiv":
        raise ValueError(f"split='time' exists only for ogbn-arxiv, not {canon}")
    valid = RANDOM_SPLIT_OPTIONS + (SYNTHETIC_OPTIONS if canon == "synthetic" else ())
    check_options(options, valid, f"option(s) for dataset {canon}")
    split_opts = {k: options.pop(k) for k in RANDOM_SPLIT_OPTIONS if k in options}
    if split_opts and split not in RANDOM_PROTOCOL:
        raise ValueError(f"{', '.join(split_opts)} only apply to split='random', 'fixed' or 'runner'")
    lcc = split in RANDOM_PROTOCOL if lcc is None else bool(lcc)
    split_seed = seed
    if split in ("fixed", "runner"):
        split_seed = S.FIXED_SPLIT_SEED if split == "fixed" else S.runner_split_seed(seed)
        split_opts.setdefault("development_seed", split_seed)

    raw = _read(canon, family, root, download, force_reload, seed, options)
    graph = Graph.from_edge_index(raw.edge_index, raw.num_nodes).symmetrize().remove_self_loops()
    x, y, year = raw.x.float(), raw.y.long(), raw.year
    full_masks = None
    if split == "public":
        full_masks = S.planetoid_public_split(raw.num_nodes, *raw.public_split)
    elif split == "time":
        full_masks = S.time_split(year)

    node_map = None
    if lcc:
        graph, node_map = graph.largest_connected_component()
        x, y = x[node_map], y[node_map]
        if full_masks is not None:
            full_masks = tuple(m[node_map] for m in full_masks)
    if full_masks is None:
        if "num_development" not in split_opts:
            split_opts["num_development"] = _default_development(canon, raw.num_classes, int(y.numel()))
        # the official runner draws from every node of the component, taking a missing label for class 0
        # (PyG's reading of CiteSeer); such nodes are then dropped from the masks below, never scored
        full_masks = S.random_split(y.clamp_min(0) if split == "runner" else y, split_seed, **split_opts)
    train, val, test = (m & (y >= 0) for m in full_masks)  # unknown labels are never in a split
    meta = {"split": split, "seed": seed, "lcc": lcc, "num_nodes_full": raw.num_nodes,
            "node_map": node_map, "files": raw.files, "split_options": split_opts,
            "options": {k: v for k, v in options.items()}}
    return Dataset(canon, graph, x, y, train, val, test, raw.num_classes, meta)


def _default_development(canon: str, num_classes: int, num_nodes: int) -> int:
    """The paper's development-set size: 5000 for Coauthor CS, 1500 otherwise. Synthetic graphs get
    enough for 20 training nodes per class among many classes, and at most half the nodes."""
    if canon == "coauthor-cs":
        return 5000
    if canon.startswith("synthetic"):
        return min(max(1500, 50 * num_classes), num_nodes // 2)
    return 1500


def _read(canon: str, family: str, root, download: bool, force_reload: bool, seed: int,
          options: Dict[str, Any]) -> RawData:
    readers: Dict[str, Callable[[], RawData]] = {
        "planetoid": lambda: load_planetoid(canon, root, download),
        "npz": lambda: load_npz(canon, root, download),
        "ogb": lambda: load_ogbn_arxiv(root, download, force_reload),
        "synthetic": lambda: csbm(seed=seed, name=canon, **(ARXIV_SIZE if canon == "synthetic-arxiv" else options)),
    }
    return readers[family]()


def file_list(name: str) -> list:
    """Raw files (paths relative to the data root) that dataset ``name`` reads; empty for synthetic sets."""
    canon = canonical_name(name)
    family = DATASETS[canon][0]
    if family == "planetoid":
        return [f"planetoid/ind.{canon}.{p}" for p in PARTS]
    if family == "npz":
        return [f"npz/{NPZ_FILES[canon]}"]
    if family == "ogb":
        return [f"ogbn_arxiv/raw/{f}" for f in ARXIV_FILES]
    return []

