"""Forward+backward time, NFE and peak memory of each scheme x backprop on the arxiv-sized synthetic graph
(not run in CI): python -m pytest -m benchmark tests/benchmarks/test_solvers.py

The function is the paper's frozen-attention diffusion (linear: every scheme applies), width 64, 2 heads,
T = 1; memory is the bytes autograd keeps for backward (the distinct storages of saved tensors, so shared
index arrays count once), measured with ``torch.autograd.graph.saved_tensors_hooks``: the part that
differs between direct and adjoint.
"""
import pytest
import torch

import beltrami
from beltrami.functions import FrozenAttentionDiffusion
from beltrami.solvers import solve

from .conftest import DEVICE, synced

pytestmark = pytest.mark.benchmark

CASES = {"euler": dict(step_size=0.25), "rk4": dict(step_size=0.5), "dopri5": dict(rtol=1e-3, atol=1e-4),
         "bosh3": dict(rtol=1e-3, atol=1e-4), "implicit_euler": dict(step_size=0.5),
         "crank_nicolson": dict(step_size=0.5)}


@pytest.fixture(scope="module")
def arxiv_graph():
    return beltrami.load_dataset("synthetic-arxiv", lcc=False).graph.to(DEVICE)


@pytest.mark.parametrize("backprop", ["direct", "adjoint"])
@pytest.mark.parametrize("scheme", list(CASES))
def test_solve_forward_backward(benchmark, arxiv_graph, scheme, backprop):
    torch.manual_seed(0)
    f = FrozenAttentionDiffusion(arxiv_graph, 64, heads=2, attention_dim=32, add_source=True).to(DEVICE)
    z0 = torch.randn(arxiv_graph.num_nodes, 64, device=DEVICE, requires_grad=True)
    info = {}

    @synced
    def step():
        saved = [0]
        seen = set()

        def pack(t):
            ptr = t.untyped_storage().data_ptr()
            if ptr not in seen:
                seen.add(ptr)
                saved[0] += t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            sol = solve(f, z0, 1.0, scheme=scheme, backprop=backprop, **CASES[scheme])
            sol.z.square().mean().backward()
        info.update(sol.stats, saved_MB=saved[0] / 2**20)

    benchmark.pedantic(step, rounds=1, warmup_rounds=1 if DEVICE.type == "cuda" else 0)  # CUDA: warm-up apart
    benchmark.extra_info.update(info, scheme=scheme, backprop=backprop, device=str(DEVICE), nodes=arxiv_graph.num_nodes,
                                edges=arxiv_graph.num_edges)
