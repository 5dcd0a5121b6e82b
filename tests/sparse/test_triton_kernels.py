"""The Triton kernels (fused attention diffusion, CSR product and its backward), run on the CPU through
Triton's interpreter (``TRITON_INTERPRET=1``) in a subprocess, so that the compiled kernels of this process
stay untouched; on a GPU ``tests/test_gpu.py`` runs them compiled."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from beltrami.sparse import triton_kernels

ROOT = Path(__file__).resolve().parents[2]

# Against the composition the kernel replaces (SDDMM, row softmax, head mean, SpMM, alpha (A x - x)), each part
# tested against dense references elsewhere: the output, the attention and each gradient, asked for together
# and alone. Sizes that exercise the masks: 3 heads of width 5, 7 channels; node 0 is a hub whose row and
# column take several blocks of edges; the last node is isolated (an empty row and column).
SCRIPT = r"""
import json, torch
from beltrami.sparse import sddmm, spmm, triton_kernels
from beltrami.sparse.softmax import segment_softmax
from tests.reference import hub_graph

g = hub_graph(40, 300, 45)
c = g.csr()
gen = torch.Generator().manual_seed(0)
kq = torch.randn(40, 2, 3, 5, generator=gen, dtype=torch.float64)
x, w = (torch.randn(40, 7, generator=gen, dtype=torch.float64) for _ in range(2))
alpha = torch.tensor([0.6], dtype=torch.float64)
inputs = [t.clone().requires_grad_() for t in (kq, x, alpha)]
att_ref = segment_softmax(sddmm(c, inputs[0][:, 0], inputs[0][:, 1]) * 0.3, c.crow, c.row)
out_ref = inputs[2] * (spmm(c, att_ref.mean(1), inputs[1]) - inputs[1])
grads_ref = torch.autograd.grad((out_ref * w).sum(), inputs)
report = {"max_degree": int((c.crow[1:] - c.crow[:-1]).max()), "block": triton_kernels.BLOCK_E}
for dtype in (torch.float64, torch.float32):
    args = [t.to(dtype) for t in (kq, x, alpha)]
    out, att = triton_kernels.attention_diffusion(c.crow, c.col, *args, 0.3)
    err = {"out": (out.double() - out_ref).abs().max().item(), "att": (att.double() - att_ref).abs().max().item()}
    for need in ((True, True, True), (True, False, False), (False, True, False), (False, False, True)):
        grads = triton_kernels.attention_diffusion_backward(c.crow, c.col, c.t_crow, c.t_col, c.t_perm, *args, att,
                                                            w.to(dtype), 0.3, *need)
        for name, wanted, got, ref in zip(("kq", "x", "alpha"), need, grads, grads_ref):
            key = name + ("" if all(need) else "_alone")
            err[key] = max(err.get(key, 0.0), (got.double() - ref).abs().max().item() if wanted else 0.0)
            assert wanted or got.numel() == 0
    # the CSR product and its one-pass backward, against torch's kernels
    v = torch.randn(g.num_edges, generator=gen, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (v, x)]
    prod_ref = spmm(c, *leaves)
    prod_grads = torch.autograd.grad((prod_ref * w).sum(), leaves)
    prod = triton_kernels.csr_spmm(c.crow, c.col, v.to(dtype), x.to(dtype))
    err["spmm"] = (prod.double() - prod_ref).abs().max().item()
    for need in ((True, True), (True, False), (False, True)):
        grads = triton_kernels.csr_spmm_backward(c.t_crow, c.t_col, c.t_perm, v.to(dtype), x.to(dtype), w.to(dtype),
                                                 *need)
        for name, wanted, got, ref in zip(("spmm_values", "spmm_x"), need, grads, prod_grads):
            key = name + ("" if all(need) else "_alone")
            err[key] = max(err.get(key, 0.0), (got.double() - ref).abs().max().item() if wanted else 0.0)
            assert wanted or got.numel() == 0
    report[str(dtype)] = err
print(json.dumps(report))
"""


@pytest.mark.skipif(not triton_kernels.available(), reason="triton is not installed")
def test_triton_kernels_match_the_composed_kernels():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["max_degree"] > 2 * report["block"]  # the hub's row takes three blocks
    for dtype, tol in (("torch.float64", 1e-12), ("torch.float32", 1e-5)):
        for name, err in report[dtype].items():
            assert err < tol, (dtype, name, err)
