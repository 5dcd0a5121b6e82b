"""Micro-benchmarks of the sparse kernels and one function evaluation (not run in CI).

Byte model (float32, int64 indices), the compulsory traffic of each kernel: an SpMM reads the CSR
structure (12 E + 8 N bytes), gathers one row of x per edge (4 E D: on graphs without locality the rows are
not reused from cache) and writes the output (4 N D). Reported as bytes/s and as a fraction of this
machine's measured copy bandwidth in ``extra_info``, and as a fraction of its random-row bandwidth (256-byte
rows read in a random order), the ceiling on graphs without locality.

Backward passes take a fixed dense upstream gradient made before the timing (as an ODE solver's adjoint is):
``.sum().backward()`` timed the copy of an expanded gradient into a fresh tensor (8 ms of a 300 ms function
evaluation at arxiv size), and a fresh ``ones_like`` its page faults.
"""
import pytest
import torch

from beltrami.functions import BeltramiDiffusion, compile_function
from beltrami.sparse import available_backends, edge_softmax, spmm
from beltrami.sparse.softmax import column_softmax

from .conftest import DEVICE, record, synced

pytestmark = pytest.mark.benchmark
D = 64
KERNELS = list(available_backends(DEVICE.type))  # torch; torch_sparse, and cpp or triton, where present


def spmm_bytes(g, d):
    return 12 * g.num_edges + 8 * g.num_nodes + 4 * g.num_edges * d + 4 * g.num_nodes * d


@pytest.mark.parametrize("backend", KERNELS)
def test_spmm_forward(benchmark, graph, bandwidth, backend):
    v, x = torch.rand(graph.num_edges, device=DEVICE), torch.randn(graph.num_nodes, D, device=DEVICE)
    csr = graph.csr()
    benchmark.pedantic(synced(spmm), args=(csr, v, x, backend), rounds=10, warmup_rounds=2)
    record(benchmark, bandwidth, spmm_bytes(graph, D), backend=backend, nodes=graph.num_nodes, edges=graph.num_edges)


@pytest.mark.parametrize("backend", KERNELS)
def test_spmm_forward_backward(benchmark, graph, bandwidth, backend):
    v = torch.rand(graph.num_edges, device=DEVICE, requires_grad=True)
    x = torch.randn(graph.num_nodes, D, device=DEVICE, requires_grad=True)
    csr = graph.csr()
    grad = torch.randn(graph.num_nodes, D, device=DEVICE)

    @synced
    def step():
        spmm(csr, v, x, backend).backward(grad)

    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    # forward SpMM, backward SpMM with A^T, and SDDMM (structure + gathers + E values)
    nbytes = 2 * spmm_bytes(graph, D) + 16 * graph.num_edges + 4 * graph.num_edges * D + 8 * graph.num_nodes * D
    record(benchmark, bandwidth, nbytes, backend=backend, nodes=graph.num_nodes, edges=graph.num_edges)


@pytest.mark.parametrize("over", ["rows", "cols"])
def test_edge_softmax_forward_backward(benchmark, graph, bandwidth, over):
    """Rows: sorted segments (CSR); cols: scattered segments (``normalise_over="cols"``)."""
    s = torch.randn(graph.num_edges, 4, device=DEVICE, requires_grad=True)
    w = torch.randn(graph.num_edges, 4, device=DEVICE)  # a non-constant upstream gradient
    csr = graph.csr()

    @synced
    def step():
        a = edge_softmax(csr, s) if over == "rows" else column_softmax(s, csr.col, graph.num_nodes)
        a.backward(w)

    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    record(benchmark, bandwidth, 8 * graph.num_edges * 4 * 6, heads=4, edges=graph.num_edges, over=over)


@pytest.mark.parametrize("mode", ["eager", "script", "compile"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_beltrami_function_forward_backward(benchmark, graph, bandwidth, mode, kernel):
    torch.manual_seed(0)
    f = compile_function(BeltramiDiffusion(graph, D, heads=4, attention_dim=32, backend=kernel).to(DEVICE), mode)
    z = torch.randn(graph.num_nodes, D, device=DEVICE, requires_grad=True)
    t = torch.tensor(0.0, device=DEVICE)
    grad = torch.randn(graph.num_nodes, D, device=DEVICE)

    @synced
    def step():
        f(t, z).backward(grad)

    benchmark.pedantic(step, rounds=5, warmup_rounds=2)
    # attention: read z, write K/Q (N x 64 each), SDDMM (gathers of 8 floats per head and edge), softmax
    # (E x H, ~6 passes), head mean; then the SpMM. Backward about twice the forward.
    fwd = (4 * graph.num_nodes * D * 3 + 12 * graph.num_edges + 4 * graph.num_edges * 64
           + 4 * graph.num_edges * 4 * 6 + spmm_bytes(graph, D))
    record(benchmark, bandwidth, 3 * fwd, mode=mode, kernel=kernel, nodes=graph.num_nodes, edges=graph.num_edges)
