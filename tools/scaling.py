"""Time and memory of one Beltrami function evaluation (forward + backward) against graph size, with the
fitted log-log slope against the number of edges (1.0 = linear).

    python tools/scaling.py --sizes 1000,10000,100000,1000000 --output scaling.json

Each size runs in a fresh process, so its peak RSS is its own; memory is the peak RSS increase over the
process's state after building the graph, the function and z (the evaluation's working set). The slopes
are fitted on the sizes >= 10,000 nodes (below that, fixed per-call overhead dominates).
"""
import argparse
import json
import subprocess
import sys

import numpy as np
from rich.console import Console
from rich.table import Table

from beltrami.atomic import atomic_write_text
from beltrami.training.result import git_commit, versions

CHILD = """
import json, resource, sys, time, torch, beltrami
from beltrami.functions import BeltramiDiffusion
n, deg, dim = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
raw = beltrami.datasets.csbm(num_nodes=n, avg_degree=deg, num_classes=10, num_features=4, seed=0)
g = beltrami.Graph.from_edge_index(raw.edge_index, n).symmetrize().remove_self_loops()
torch.manual_seed(0)
f = BeltramiDiffusion(g, dim, heads=2, attention_dim=16)
z = torch.randn(n, dim, requires_grad=True)
t = torch.tensor(0.0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
times = []
for _ in range(6):
    t0 = time.perf_counter(); f(t, z).sum().backward(); times.append(time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"nodes": n, "edges": g.num_edges, "seconds": sorted(times[1:])[2], "peak_rss": peak,
                  "working_set": max(peak - base, 1), "base_rss": base}))
"""


def slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,100000,1000000")
    p.add_argument("--avg-degree", type=float, default=10.0)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--output", default="scaling.json")
    args = p.parse_args(argv)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(args.avg_degree), str(args.dim)],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    big = [r for r in rows if r["nodes"] >= 10_000] or rows
    edges = [r["edges"] for r in big]
    result = {"rows": rows, "time_slope": slope(edges, [r["seconds"] for r in big]),
              "memory_slope": slope(edges, [r["working_set"] for r in big]),
              "versions": versions(), "commit": git_commit(), "args": vars(args)}
    atomic_write_text(args.output, json.dumps(result, indent=1))
    table = Table(title="Beltrami function forward+backward vs graph size")
    for col in ("nodes", "edges", "seconds", "working set MB", "peak RSS MB"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["nodes"]), str(r["edges"]), f"{r['seconds']:.4f}", f"{r['working_set'] / 2**20:.0f}",
                      f"{r['peak_rss'] / 2**20:.0f}")
    Console().print(table)
    Console().print(f"log-log slope vs edges (sizes >= 10^4): time {result['time_slope']:.2f}, working set "
                    f"{result['memory_slope']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
