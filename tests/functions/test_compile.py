"""Scripted and compiled functions agree with eager ones, forward and gradients (float64)."""
import subprocess
import sys

import pytest
import torch

from beltrami.functions import (BeltramiDiffusion, FrozenAttentionDiffusion, LaplacianDiffusion,
                                compile_function)

from beltrami.sparse import available_backends
from tests.reference import random_graph

D = torch.float64
T0 = torch.tensor(0.0, dtype=D)


def _functions(g):
    torch.manual_seed(0)
    return {
        "beltrami": BeltramiDiffusion(g, 6, pos_dim=2, heads=2, attention_dim=4, add_source=True,
                                      separate_diffusivity=True).double(),
        "beltrami-exp": BeltramiDiffusion(g, 6, pos_dim=2, heads=2, attention_dim=4, kind="exp_product").double(),
        "beltrami-cols": BeltramiDiffusion(g, 6, heads=2, attention_dim=4, normalise_over="cols").double(),
        "frozen": FrozenAttentionDiffusion(g, 6, heads=2, attention_dim=4, kind="cosine_sim",
                                           normalisation="squareplus").double(),
        "laplacian": LaplacianDiffusion(g, 6, norm="rw"),
    }


def _run(f, z0, z):
    f.set_initial(z0)
    out = f(T0, z)
    params = [p for p in f.parameters()]
    grads = torch.autograd.grad(out.square().sum(), [z0, z] + params, allow_unused=True)
    return out.detach(), [None if gr is None else gr.detach() for gr in grads]


@pytest.mark.parametrize("name", ["beltrami", "beltrami-exp", "beltrami-cols", "frozen", "laplacian"])
@pytest.mark.parametrize("mode", ["script", "compile"])
def test_compiled_equals_eager(name, mode):
    g = random_graph(n=20, m=60)
    f = _functions(g)[name]
    z0 = torch.randn(20, 6, dtype=D, requires_grad=True)
    z = torch.randn(20, 6, dtype=D, requires_grad=True)
    ref_out, ref_grads = _run(f, z0, z)
    out, grads = _run(compile_function(f, mode), z0, z)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads, ref_grads):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif("cpp" not in available_backends(), reason="no C++ compiler")
@pytest.mark.parametrize("mode", ["eager", "script", "compile"])
@pytest.mark.parametrize("kind", ["scaled_dot", "pearson"])
def test_cpp_kernel_equals_torch_kernel_in_every_mode(mode, kind):
    # the backend is an int argument of the op: scripted and compiled code carry it to the C++ kernel;
    # with dot-product attention and a row softmax the cpp function takes the fused attention kernel
    g = random_graph(n=20, m=60)
    z0 = torch.randn(20, 6, dtype=D, requires_grad=True)
    z = torch.randn(20, 6, dtype=D, requires_grad=True)
    outs = []
    for backend in ("torch", "cpp"):
        torch.manual_seed(0)
        f = BeltramiDiffusion(g, 6, pos_dim=2, heads=2, attention_dim=4, kind=kind, add_source=True,
                              backend=backend).double()
        torch.nn.init.normal_(f.attention.W_K.weight)  # scores far from uniform
        assert f.fused == (backend == "cpp")
        outs.append(_run(f if mode == "eager" else compile_function(f, mode), z0, z))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(outs[1][1], outs[0][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_script_save_load_roundtrip(tmp_path):
    g = random_graph(n=20, m=60)
    f = _functions(g)["beltrami"]
    z = torch.randn(20, 6, dtype=D)
    f.set_initial(z)
    s = compile_function(f, "script")
    s.set_initial(z)
    path = tmp_path / "f.pt"
    s.save(str(path))
    loaded = torch.jit.load(str(path))
    loaded.set_initial(z)
    torch.testing.assert_close(loaded(T0, z), f(T0, z))


def test_compiled_does_not_recompile_for_other_graphs():
    """dynamic=True: after rewiring to graphs of other sizes the compiled code is reused, not recompiled."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    torch.manual_seed(0)
    f = BeltramiDiffusion(random_graph(n=30, m=90), 6, heads=2, attention_dim=4)
    c = compile_function(f, "compile")
    for n in (30, 45, 61, 80):
        g = random_graph(n=n, m=3 * n, seed=n)
        c.set_graph(g)  # the wrapped module's set_graph
        z = torch.randn(n, 6)
        torch.testing.assert_close(c(torch.tensor(0.0), z), f(torch.tensor(0.0), z), rtol=1e-5, atol=1e-6)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs == 1, f"compiled {graphs} graphs for 4 graph sizes"


def test_no_dense_n_by_n_on_300k_nodes():
    """The Beltrami function (4 heads, dim 32) forward+backward on 300,000 nodes: a dense n x n float32
    matrix would take 360 GB; the process's peak RSS stays under 3 GB."""
    code = """
import resource, torch, beltrami
from beltrami.functions import BeltramiDiffusion
n = 300_000
g = beltrami.Graph.from_edge_index(torch.randint(n, (2, 1_500_000), generator=torch.Generator().manual_seed(0)), n)
g = g.symmetrize()
f = BeltramiDiffusion(g, 32, heads=4, attention_dim=32)
z = torch.randn(n, 32, requires_grad=True)
f(torch.tensor(0.0), z).square().sum().backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, g.num_edges)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    peak, edges = int(out[0]), int(out[1])
    assert edges > 2_900_000
    assert peak < 3 * 2**30, f"peak RSS {peak / 2**30:.2f} GiB"
    assert peak < 300_000 ** 2 / 20  # a twentieth of n^2 bytes (n^2 float32 would be 4 n^2 bytes)


def test_compiled_function_under_the_adjoint():
    """torchdiffeq's adjoint backpropagates through f with retain_graph=True: the compiled function must
    allow it (no donated buffers) and give the eager gradients."""
    from beltrami.solvers import solve

    g = random_graph(n=20, m=60)
    torch.manual_seed(0)
    f = BeltramiDiffusion(g, 6, heads=2, attention_dim=4).double()
    z0 = torch.randn(20, 6, dtype=D, requires_grad=True)

    def grads(func):
        sol = solve(func, z0, 0.5, scheme="rk4", step_size=0.25, backprop="adjoint")
        return torch.autograd.grad(sol.z.square().sum(), [z0] + list(f.parameters()), allow_unused=True)

    for a, b in zip(grads(compile_function(f, "compile")), grads(f)):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
