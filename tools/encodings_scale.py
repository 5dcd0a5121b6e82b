"""Time and peak memory of the positional encodings and kNN rewiring at ogbn-arxiv's size, and the
sparse-vs-dense PPR comparison on a graph where the dense n x n approach still fits.

    python tools/encodings_scale.py --output encodings-scale.json            # arxiv size: PPR, kNN, DeepWalk
    python tools/encodings_scale.py --which ppr-dense --dense-nodes 10000     # the dense comparison only

Every measurement runs in a fresh process, so its peak RSS is its own. The graph is the CSBM of
``ARXIV_SIZE`` (169,343 nodes, 1,166,243 undirected edges; `beltrami.datasets.csbm`), symmetrised. The
dense PPR baseline is what the paper's code did: ``alpha (I - (1 - alpha) T)^-1`` as an n x n float64
inverse, then top-k per row.
"""
import argparse
import json
import subprocess
import sys

from rich.console import Console
from rich.table import Table

from beltrami.atomic import atomic_write_text
from beltrami.training.result import git_commit, versions

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch, beltrami
from beltrami.datasets import csbm
from beltrami.datasets.synthetic import ARXIV_SIZE
from beltrami.encodings import deepwalk_embeddings, knn_graph, ppr
which, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = dict(ARXIV_SIZE)
if n != size["num_nodes"]:
    size["num_edges"] = int(size["num_edges"] * n / size["num_nodes"])
    size["num_nodes"] = n
raw = csbm(seed=0, **size)
g = beltrami.Graph.from_edge_index(raw.edge_index, n).symmetrize().remove_self_loops()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
info = {}
if which == "ppr":
    res = ppr(g, alpha=0.05, topk=k, eps=1e-3, tol=1e-3, method="power", show_progress=False)
    info = {"iterations": res.iterations, "tail": res.tail, "nnz": int(res.matrix.nnz),
            "mean_l1_bound": float(res.bound.mean())}
elif which == "ppr-exact":
    res = ppr(g, alpha=0.05, topk=k, method="solve", show_progress=False)
    info = {"nnz": int(res.matrix.nnz)}
elif which == "ppr-dense":
    import scipy.sparse as sp
    adj = g.to_scipy().astype(np.float64)
    deg = np.asarray(adj.sum(1)).ravel()
    trans = (sp.diags(1.0 / np.maximum(deg, 1)) @ adj).toarray()
    dense = 0.05 * np.linalg.inv(np.eye(n) - 0.95 * trans)
    idx = np.argpartition(-dense, k, axis=1)[:, :k]
    info = {"nnz": int(idx.size)}
elif which == "knn":
    coords = torch.randn(n, 16, generator=torch.Generator().manual_seed(0))
    kg = knn_graph(coords, k, metric="cosine", show_progress=False)
    info = {"edges": int(kg.num_edges)}
elif which == "deepwalk":
    emb = deepwalk_embeddings(g, dim=k, walk_length=20, walks_per_node=10, window=5, batch_size=65536,
                              show_progress=False, cache=False)
    info = {"shape": list(emb.shape)}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"which": which, "nodes": n, "edges": g.num_edges, "k": k, "seconds": seconds,
                  "peak_rss": peak, "working_set": max(peak - base, 1), **info}))
"""

DEFAULT_K = {"ppr": 64, "ppr-exact": 64, "ppr-dense": 64, "knn": 64, "deepwalk": 16}


def measure(which: str, nodes: int, k: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(nodes), str(k)], capture_output=True, text=True)
    if out.returncode != 0:
        return {"which": which, "nodes": nodes, "k": k, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--which", default="ppr,knn,deepwalk,ppr-dense",
                   help="comma list of ppr, ppr-exact, ppr-dense, knn, deepwalk")
    p.add_argument("--nodes", type=int, default=169_343, help="graph size of ppr/knn/deepwalk (default arxiv)")
    p.add_argument("--dense-nodes", type=int, default=10_000, help="graph size of the dense/sparse PPR comparison")
    p.add_argument("--output", default="encodings-scale.json")
    args = p.parse_args(argv)
    rows = []
    for which in args.which.split(","):
        if which == "ppr-dense":  # side by side with our two sparse modes, on the same small graph
            for w in ("ppr-dense", "ppr", "ppr-exact"):
                rows.append(measure(w, args.dense_nodes, DEFAULT_K[w]))
        else:
            rows.append(measure(which, args.nodes, DEFAULT_K[which]))
        print(json.dumps(rows[-1]), flush=True)
    atomic_write_text(args.output, json.dumps({"rows": rows, "versions": versions(), "commit": git_commit()},
                                              indent=1))
    table = Table(title="encodings: time and peak memory")
    for col in ("encoding", "nodes", "edges", "k", "seconds", "peak RSS GiB", "working set GiB"):
        table.add_column(col)
    for r in rows:
        if "error" in r:
            table.add_row(r["which"], str(r["nodes"]), "-", str(r["k"]), "failed", str(r["error"]), "")
            continue
        table.add_row(r["which"], str(r["nodes"]), str(r["edges"]), str(r["k"]), f"{r['seconds']:.1f}",
                      f"{r['peak_rss'] / 2**30:.2f}", f"{r['working_set'] / 2**30:.2f}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
