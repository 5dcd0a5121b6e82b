"""Time the Triton fused attention diffusion against the composed kernels it replaces, over edge-block sizes
and warps per program, on a CUDA device:

    python tools/fused_kernel_sweep.py --output OUT.json            # the ogbn-arxiv-sized CSBM, on cuda
    TRITON_INTERPRET=1 python tools/fused_kernel_sweep.py --device cpu --nodes 300 --rounds 1   # dry run

Both compute ``alpha (A x - x)`` with ``A`` the head mean of the row softmax of ``<k_i, q_j> / sqrt(K)`` and
its gradients in ``kq`` ``[N, 2, H, K]``, ``x`` ``[N, D]`` and ``alpha`` (float32, H = 4, K = 8, D = 64: the
micro-benchmarks' function). The composed path is SDDMM, row softmax, head mean and SpMM with torch's
kernels (``backend="torch"``). Medians of ``--rounds`` synchronised runs; the JSON records the device, the
versions and the commit.
"""
from __future__ import annotations

import argparse
import statistics
import time

import json

import torch
from rich.console import Console
from rich.table import Table

import beltrami
from beltrami.atomic import atomic_write_text
from beltrami.sparse import sddmm, spmm, triton_kernels
from beltrami.sparse.softmax import segment_softmax
from beltrami.training.result import git_commit, versions


def median_ms(fn, rounds: int, device: torch.device) -> float:
    fn()  # warm-up: compiles the kernels of this configuration
    times = []
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--nodes", type=int, default=None, help="a CSBM of this many nodes (default: arxiv-sized)")
    parser.add_argument("--blocks", default="8,16,32", help="comma list of edges per block")
    parser.add_argument("--warps", default="1,2,4", help="comma list of warps per program")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.nodes:
        graph = beltrami.load_dataset("synthetic", num_nodes=args.nodes).graph
    else:
        graph = beltrami.load_dataset("synthetic-arxiv").graph
    csr = graph.to(device).csr()
    gen = torch.Generator().manual_seed(0)
    kq = torch.randn(graph.num_nodes, 2, 4, 8, generator=gen).to(device).requires_grad_()
    x = torch.randn(graph.num_nodes, 64, generator=gen).to(device).requires_grad_()
    alpha = torch.tensor([0.6], device=device, requires_grad=True)
    grad = torch.randn(graph.num_nodes, 64, generator=gen).to(device)
    scale = 8 ** -0.5

    def composed_forward():
        a = segment_softmax(sddmm(csr, kq[:, 0], kq[:, 1]) * scale, csr.crow, csr.row).mean(1)
        return alpha * (spmm(csr, a, x) - x)

    def composed_step():
        torch.autograd.backward(composed_forward(), grad)

    def fused_forward():
        return triton_kernels.attention_diffusion(csr.crow, csr.col, kq, x, alpha, scale)

    def fused_step():
        _, att = fused_forward()
        triton_kernels.attention_diffusion_backward(csr.crow, csr.col, csr.t_crow, csr.t_col, csr.t_perm, kq, x,
                                                    alpha, att, grad, scale, True, True, True)

    with torch.no_grad():
        rows = [dict(kernel="composed", forward_ms=median_ms(composed_forward, args.rounds, device))]
    rows[0]["forward_backward_ms"] = median_ms(composed_step, args.rounds, device)
    defaults = (triton_kernels.BLOCK_E, triton_kernels.NUM_WARPS)
    try:
        for block in map(int, args.blocks.split(",")):
            for warps in map(int, args.warps.split(",")):
                triton_kernels.BLOCK_E, triton_kernels.NUM_WARPS = block, warps
                rows.append(dict(kernel="fused", block=block, warps=warps,
                                 forward_ms=median_ms(fused_forward, args.rounds, device),
                                 forward_backward_ms=median_ms(fused_step, args.rounds, device)))
    finally:
        triton_kernels.BLOCK_E, triton_kernels.NUM_WARPS = defaults

    table = Table(title=f"fused attention diffusion, {graph.num_nodes} nodes, {graph.num_edges} edges, {device}")
    for col in ("kernel", "block", "warps", "forward ms", "fwd+bwd ms", "fwd+bwd speed-up"):
        table.add_column(col, justify="right")
    base = rows[0]["forward_backward_ms"]
    for r in rows:
        table.add_row(r["kernel"], str(r.get("block", "")), str(r.get("warps", "")), f"{r['forward_ms']:.3f}",
                      f"{r['forward_backward_ms']:.3f}", f"{base / r['forward_backward_ms']:.2f}x")
    Console().print(table)
    if args.output:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        result = dict(rows=rows, nodes=graph.num_nodes, edges=graph.num_edges, device=name, rounds=args.rounds,
                      argv=vars(args), versions=versions(), commit=git_commit())
        atomic_write_text(args.output, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
