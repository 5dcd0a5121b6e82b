"""Sparse kernels and one Beltrami function evaluation (asv). Full grid: BELTRAMI_ASV_FULL=1.

Backward passes take a fixed dense upstream gradient made in ``setup`` (as an ODE solver's adjoint is):
``.sum().backward()`` would time the copy of an expanded gradient, and a fresh ``ones_like`` its page faults."""
import os

import torch

import beltrami
from beltrami.functions import BeltramiDiffusion, compile_function
from beltrami.sparse import available_backends, spmm

FULL = bool(os.environ.get("BELTRAMI_ASV_FULL"))
SMOKE = bool(os.environ.get("BELTRAMI_ASV_SMOKE"))  # the test suite's check that every benchmark runs
SIZES = ["20k", "arxiv"] if FULL else ["20k"]


def _graph(size):
    if size == "arxiv":
        return beltrami.load_dataset("synthetic-arxiv", lcc=False).graph
    n = 2_000 if SMOKE else 20_000
    return beltrami.load_dataset("synthetic", lcc=False, num_nodes=n, num_edges=5 * n, num_classes=10,
                                 num_features=8).graph


KERNELS = list(available_backends())  # on the CPU, where asv runs


class SpmmTime:
    params = (SIZES, list(KERNELS))
    param_names = ["graph", "backend"]
    timeout = 600  # for setup_cache: a checkout at a new path builds the C++ kernels (about a minute)

    def setup_cache(self):
        """Build the C++ kernels once, outside the timed calls (asv's default timeout is 60 s). Returns the
        backends ready (asv passes a cache to the benchmarks only when it is not None)."""
        if "cpp" in KERNELS:
            from beltrami.sparse import cpu_kernels

            cpu_kernels.load()
        return list(KERNELS)

    def setup(self, _, size, backend):
        self.csr = _graph(size).csr()
        n, e = self.csr.crow.numel() - 1, self.csr.col.numel()
        self.v, self.x = torch.rand(e), torch.randn(n, 64)
        self.vg, self.xg = self.v.clone().requires_grad_(), self.x.clone().requires_grad_()
        self.grad = torch.randn(n, 64)

    def time_forward(self, _, size, backend):
        spmm(self.csr, self.v, self.x, backend)

    def time_forward_backward(self, _, size, backend):
        spmm(self.csr, self.vg, self.xg, backend).backward(self.grad)


class BeltramiFunctionEval:
    params = (SIZES, ["eager", "script", "compile"] if FULL else ["eager", "compile"])
    param_names = ["graph", "compile"]

    def setup(self, size, mode):
        torch.manual_seed(0)
        g = _graph(size)
        self.f = compile_function(BeltramiDiffusion(g, 64, heads=4, attention_dim=32), mode)
        self.z = torch.randn(g.num_nodes, 64, requires_grad=True)
        self.t = torch.tensor(0.0)
        self.grad = torch.randn(g.num_nodes, 64)
        self.f(self.t, self.z).backward(self.grad)  # warm-up (compilation)

    def time_forward_backward(self, size, mode):
        self.f(self.t, self.z).backward(self.grad)

    def peakmem_forward_backward(self, size, mode):
        self.f(self.t, self.z).backward(self.grad)
