import platform
import shutil
import subprocess

import pytest
import torch

import beltrami
from beltrami.sparse import available_backends, edge_softmax, edge_squareplus, sddmm, spmm
from beltrami.sparse.softmax import column_softmax

from tests.reference import dense, dense_row_softmax, dense_squareplus, random_graph

BACKENDS = list(available_backends())  # torch; torch_sparse, cpp where present
D = torch.float64
# (heads, key width) pairs the C++ fused attention is compiled for with both fixed, in float
FIXED_SHAPES = [(1, 64), (4, 8), (8, 16), (8, 4), (1, 16), (4, 2), (4, 16), (2, 16)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [None, 3])
def test_spmm_matches_dense(backend, heads):
    g = random_graph()
    shape_v = (g.num_edges,) if heads is None else (g.num_edges, heads)
    shape_x = (g.num_nodes, 5) if heads is None else (g.num_nodes, heads, 5)
    v, x = torch.randn(shape_v, dtype=D), torch.randn(shape_x, dtype=D)
    out = spmm(g, v, x, backend=backend, validate=True)
    ref = dense(g, v) @ x if heads is None else torch.einsum("hij,jhd->ihd", dense(g, v), x)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("heads", [None, 2])
def test_spmm_gradcheck_values_and_x(backend, heads):
    g = random_graph(n=9, m=25)
    v = torch.randn((g.num_edges,) if heads is None else (g.num_edges, heads), dtype=D, requires_grad=True)
    x = torch.randn((9, 4) if heads is None else (9, heads, 4), dtype=D, requires_grad=True)
    fn = lambda v, x: spmm(g, v, x, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (v, x))
    assert torch.autograd.gradgradcheck(fn, (v, x))


@pytest.mark.skipif("cpp" not in BACKENDS, reason="no C++ compiler")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_kernel_on_a_bigger_graph_with_threads(dtype):
    # rows long enough for the prefetch, more rows than one thread's chunk, empty rows, an odd width; the
    # backward's one pass over A^T (both gradients, and each alone) against torch's kernels in float64
    g = random_graph(n=3000, m=60_000, isolated=50)
    v, x = torch.randn(g.num_edges, dtype=dtype), torch.randn(g.num_nodes, 67, dtype=dtype)
    w = torch.randn(g.num_nodes, 67, dtype=torch.float64)

    def run(backend, v, x, need=(True, True)):
        v, x = v.clone().requires_grad_(need[0]), x.clone().requires_grad_(need[1])
        out = spmm(g, v, x, backend=backend)
        grads = torch.autograd.grad((out * w.to(out.dtype)).sum(), [t for t in (v, x) if t.requires_grad])
        return [out.detach()] + list(grads)

    ref = run("torch", v.double(), x.double())
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            got = run("cpp", v, x)
            assert got[0].dtype == dtype
            for a, b in zip(got, ref):
                torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-4)
            for k, need in enumerate(((True, False), (False, True))):
                (alone,) = run("cpp", v, x, need)[1:]
                torch.testing.assert_close(alone.double(), ref[1 + k], rtol=1e-5, atol=1e-4)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.skipif("cpp" not in BACKENDS, reason="no C++ compiler")
@pytest.mark.parametrize("dtype,heads,width", [(torch.float64, 4, 8), (torch.float64, 3, 8)]
                         + [(torch.float32, h, k) for h, k in FIXED_SHAPES + [(3, 8), (4, 5)]])
def test_fused_attention_kernel_on_a_bigger_graph_with_threads(dtype, heads, width):
    """``beltrami::attention_diffusion`` against the composition it replaces (SDDMM, row softmax, head mean,
    SpMM, ``alpha (A x - x)``): output and the gradients of kq, x and alpha, with empty rows, at 1 and 2
    threads; in float32 for every head shape the kernels are compiled for with heads and key width fixed, and
    for two they know only at run time (as double always is)."""
    from beltrami.sparse.softmax import segment_softmax

    g = random_graph(n=3000, m=60_000, isolated=50)
    c = g.csr()
    gen = torch.Generator().manual_seed(0)
    kq = torch.randn(g.num_nodes, 2, heads, width, generator=gen, dtype=torch.float64)
    x, w = (torch.randn(g.num_nodes, 67, generator=gen, dtype=torch.float64) for _ in range(2))
    alpha = torch.tensor([0.6], dtype=torch.float64)

    def composed(kq, x, alpha):
        s = sddmm(c, kq[:, 0], kq[:, 1]) * 0.3
        return alpha * (spmm(c, segment_softmax(s, c.crow, c.row).mean(1), x) - x)

    def grads(fn, *inputs):
        inputs = [t.detach().clone().requires_grad_() for t in inputs]
        out = fn(*inputs)
        return [out.detach()] + list(torch.autograd.grad((out * w.to(out.dtype)).sum(), inputs))

    ref = grads(composed, kq, x, alpha)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            fused = grads(lambda kq, x, alpha: torch.ops.beltrami.attention_diffusion(
                c.crow, c.col, kq, x, alpha, c.t_crow, c.t_col, c.t_perm, 0.3)[0], kq.to(dtype), x.to(dtype),
                alpha.to(dtype))
            for a, b in zip(fused, ref):
                assert a.dtype == dtype
                torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4 if b.numel() > 1 else 1e-2)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.skipif("cpp" not in BACKENDS, reason="no C++ compiler")
def test_fused_attention_fixed_shapes_are_the_tested_ones():
    from beltrami.sparse.cpu_kernels import load

    assert [tuple(s) for s in load().attention_fixed_shapes()] == FIXED_SHAPES


@pytest.mark.skipif("cpp" not in BACKENDS, reason="no C++ compiler")
@pytest.mark.parametrize("heads", [4, 3])
def test_fused_attention_float32_weights_match_float64(heads):
    """In float32 the fused forward's exponentials are a polynomial of its own (vectorised), not std::exp:
    with scores spread over [-100, 100] (so that exp(s - max) reaches the clamp at -87), each attention
    weight above 1e-30 agrees with a float64 softmax of the same scores to the float32 rounding of the
    scores themselves, and those below stay below."""
    g = random_graph(n=600, m=12_000, isolated=5)
    c = g.csr()
    gen = torch.Generator().manual_seed(0)
    kq = (torch.randn(g.num_nodes, 2, heads, 8, generator=gen) * 6).double()
    x = torch.randn(g.num_nodes, 16, generator=gen, dtype=torch.float64)
    alpha = torch.tensor([0.5], dtype=torch.float64)
    scores = (kq[c.row, 0] * kq[c.col, 1]).sum(-1) * 0.35
    assert scores.min() < -100 and scores.max() > 100
    ref = dense_row_softmax(g, dense(g, scores)).T
    _, att = torch.ops.beltrami.attention_diffusion(c.crow, c.col, kq.float(), x.float(), alpha.float(), c.t_crow,
                                                    c.t_col, c.t_perm, 0.35)[:2]
    att = att.double()
    big = ref > 1e-30
    assert big.float().mean() > 0.3 and (~big).any()
    # a score s carries float32 rounding of about 1e-7 |s| (|s| up to ~200 here), exp(s - max) 2e-5 of it
    torch.testing.assert_close(att[big], ref[big], rtol=5e-5, atol=0)
    assert (att[~big] < 1e-30).all()


@pytest.mark.skipif("cpp" not in BACKENDS, reason="no C++ compiler")
def test_fused_attention_kernel_gradcheck_and_no_double_backward():
    g = random_graph()
    c = g.csr()
    kq = torch.randn(g.num_nodes, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(g.num_nodes, 5, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)

    def fn(kq, x, alpha):
        return torch.ops.beltrami.attention_diffusion(c.crow, c.col, kq, x, alpha, c.t_crow, c.t_col, c.t_perm,
                                                      0.7)[0]

    assert torch.autograd.gradcheck(fn, (kq, x, alpha))
    # each gradient alone (the kernel skips the work of the others) equals its part of all three
    w = torch.randn(g.num_nodes, 5, dtype=torch.float64)
    full = torch.autograd.grad((fn(kq, x, alpha) * w).sum(), [kq, x, alpha])
    for i in range(3):
        inputs = [t if j == i else t.detach() for j, t in enumerate((kq, x, alpha))]
        (alone,) = torch.autograd.grad((fn(*inputs) * w).sum(), [inputs[i]])
        torch.testing.assert_close(alone, full[i])
    (gkq,) = torch.autograd.grad(fn(kq, x, alpha).square().sum(), [kq], create_graph=True)
    with pytest.raises(RuntimeError, match="double backward through the fused C\\+\\+/Triton attention"):
        gkq.sum().backward()


@pytest.mark.skipif("cpp" not in BACKENDS or shutil.which("objdump") is None or platform.machine() != "x86_64",
                    reason="needs the C++ kernels, objdump and an x86-64 build")
def test_cpp_build_keeps_its_prefetches():
    """The kernels' speed on graphs without locality is their software prefetches; GCC once deleted every one
    of them (a helper whose only effect is a prefetch looked free of side effects) without changing a result."""
    from beltrami.sparse.cpu_kernels import load

    asm = subprocess.run(["objdump", "-d", load().__file__], capture_output=True, text=True, check=True).stdout
    assert "prefetcht0" in asm and "prefetcht2" in asm  # the L1 and the L2 distances


def test_cpp_build_follows_header_changes(tmp_path, monkeypatch):
    """torch's builder rebuilds on changed sources and flags, not headers: the headers' digest is a flag."""
    from beltrami.sparse import cpu_kernels

    header = tmp_path / "kernels.h"
    header.write_text("constexpr int a = 1;\n")
    monkeypatch.setattr(cpu_kernels, "HEADERS", [header])
    before = cpu_kernels._headers_flag()
    header.write_text("constexpr int a = 2;\n")
    assert cpu_kernels._headers_flag() != before and before.startswith("-DBELTRAMI_HEADERS_SHA256=")


def test_cpp_backend_needs_a_compiler(monkeypatch):
    monkeypatch.setattr("beltrami.sparse.cpu_kernels.shutil.which", lambda name: None)
    available_backends.cache_clear()  # probed once per process: probe again without a compiler
    try:
        with pytest.raises(ImportError, match="sparse backend 'cpp' is not installed: it needs a C\\+\\+ compiler"):
            spmm(random_graph(), torch.ones(1), torch.ones(1, 1), backend="cpp")
    finally:
        monkeypatch.undo()
        available_backends.cache_clear()
    assert ("cpp" in available_backends()) == ("cpp" in BACKENDS)


def test_values_gradient_is_sparse_and_matches_dense():
    g = random_graph()
    v = torch.randn(g.num_edges, dtype=D, requires_grad=True)
    x = torch.randn(g.num_nodes, 4, dtype=D)
    w = torch.randn(g.num_nodes, 4, dtype=D)
    (spmm(g, v, x) * w).sum().backward()
    ref = (w @ x.T)[g.row, g.col]  # d/dA_ij of sum(w * (A x)) = <w_i, x_j>
    assert v.grad.shape == (g.num_edges,)
    torch.testing.assert_close(v.grad, ref)


def test_sddmm_matches_dense_and_gradcheck():
    g = random_graph()
    a, b = torch.randn(g.num_nodes, 6, dtype=D, requires_grad=True), torch.randn(g.num_nodes, 6, dtype=D, requires_grad=True)
    torch.testing.assert_close(sddmm(g, a, b), (a @ b.T)[g.row, g.col])
    assert torch.autograd.gradcheck(lambda a, b: sddmm(g, a, b), (a, b))
    ah, bh = torch.randn(g.num_nodes, 2, 3, dtype=D), torch.randn(g.num_nodes, 2, 3, dtype=D)
    torch.testing.assert_close(sddmm(g, ah, bh), torch.einsum("ihd,jhd->hij", ah, bh)[:, g.row, g.col].T)


@pytest.mark.parametrize("heads", [None, 4])
def test_edge_softmax_matches_dense_with_empty_rows(heads):
    g = random_graph(n=15, isolated=3)
    assert (g.degree() == 0).sum() >= 3
    s = torch.randn((g.num_edges,) if heads is None else (g.num_edges, heads), dtype=D) * 30  # large: stability
    out = edge_softmax(g, s)
    ref = dense_row_softmax(g, dense(g, s))
    torch.testing.assert_close(out, ref if heads is None else ref.T)
    sums = torch.zeros((g.num_nodes,) + s.shape[1:], dtype=D).index_add_(0, g.row, out)
    torch.testing.assert_close(sums[g.degree() > 0], torch.ones_like(sums[g.degree() > 0]))
    assert torch.isfinite(out).all()


def test_edge_softmax_gradcheck_and_double_backward():
    g = random_graph(n=8, m=20)
    s = torch.randn(g.num_edges, 2, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: edge_softmax(g, s), (s,))
    assert torch.autograd.gradgradcheck(lambda s: edge_softmax(g, s), (s,))


def test_column_softmax_matches_dense_gradcheck_and_double_backward():
    # columns are unsorted segments: the op's scattered path (no offsets)
    g = random_graph(n=10, m=25, isolated=2)
    s = torch.randn(g.num_edges, 2, dtype=D) * 30
    torch.testing.assert_close(column_softmax(s, g.col, g.num_nodes), dense_row_softmax(g, dense(g, s), dim=-2).T)
    s = torch.randn(g.num_edges, 2, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: column_softmax(s, g.col, g.num_nodes), (s,))
    assert torch.autograd.gradgradcheck(lambda s: column_softmax(s, g.col, g.num_nodes), (s,))


def test_softmax_backward_op_has_its_own_gradient():
    # the double-backward formula of beltrami::segment_softmax_backward, checked directly (third order
    # of the softmax), for sorted (rows) and scattered (columns) segments
    g = random_graph(n=8, m=20)
    csr = g.csr()
    a = edge_softmax(g, torch.randn(g.num_edges, 2, dtype=D)).requires_grad_()
    v = torch.randn(g.num_edges, 2, dtype=D, requires_grad=True)
    for index, offsets in [(csr.row, csr.crow), (g.col, None)]:
        op = lambda a, v: torch.ops.beltrami.segment_softmax_backward(a, v, index, g.num_nodes, offsets)  # noqa: E731
        assert torch.autograd.gradcheck(op, (a, v))
        assert torch.autograd.gradgradcheck(op, (a, v))


def test_edge_squareplus_matches_dense_and_gradcheck():
    g = random_graph()
    s = torch.randn(g.num_edges, dtype=D, requires_grad=True)
    torch.testing.assert_close(edge_squareplus(g, s), dense_squareplus(g, s))
    assert torch.autograd.gradcheck(lambda s: edge_squareplus(g, s), (s,))


def test_one_node_graph():
    import beltrami

    g = beltrami.Graph.from_edge_index(torch.tensor([[0], [0]]), 1)
    assert spmm(g, torch.tensor([2.0]), torch.tensor([[3.0]])).item() == 6.0
    assert edge_softmax(g, torch.tensor([5.0])).item() == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_shapes_are_checked_without_validate(backend):
    """Before these checks ran always, an x of 5 rows on a 2M-node graph crashed the process (the kernel read
    past x), and values shorter than the edge count gave NaN-filled results."""
    g = random_graph()
    v, x = torch.randn(g.num_edges), torch.randn(g.num_nodes, 4)
    with pytest.raises(ValueError, match=r"values must have shape \[E\].*E = "):
        spmm(g, v[:-1], x, backend=backend)
    with pytest.raises(ValueError, match=r"values must have shape \[E\].*E = "):
        spmm(g, torch.randn(g.num_edges + 3), x, backend=backend)
    with pytest.raises(ValueError, match="x must have shape"):
        spmm(g, v, x[:5], backend=backend)
    with pytest.raises(ValueError, match="x must have shape"):
        spmm(g, v, x[:, 0], backend=backend)
    with pytest.raises(ValueError, match=r"\[N, H=2, D\]"):
        spmm(g, torch.randn(g.num_edges, 2), torch.randn(g.num_nodes, 3, 4), backend=backend)
    with pytest.raises(TypeError, match="same dtype"):
        spmm(g, v.double(), x, backend=backend)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        spmm(g, v, x.long(), backend=backend)
    with pytest.raises(ValueError, match="one device"):
        spmm(g, v.to("meta"), x, backend=backend)
    with pytest.raises(ValueError, match="a must have shape"):
        sddmm(g, x[:5], x)
    with pytest.raises(ValueError, match="one shape"):
        sddmm(g, x, x[:, :3])


def test_clear_errors():
    g = random_graph()
    v, x = torch.randn(g.num_edges), torch.randn(g.num_nodes, 4)
    bad = v.clone()
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="values holds 1 non-finite"):
        spmm(g, bad, x, validate=True)
    with pytest.raises(ValueError, match="unknown sparse backend 'cusparse'"):
        spmm(g, v, x, backend="cusparse")
    with pytest.raises(ValueError, match="scores must have shape"):
        edge_softmax(g, torch.randn(3))
    with pytest.raises(ValueError, match="unknown sparse backend 'pyg_lib'"):  # a stub that only raised, gone
        spmm(g, v, x, backend="pyg_lib")


def test_flat_row_gather_matches_index_select_with_gradients():
    """The flat gather gather_rows uses on CUDA (narrow rows), checked here on the CPU."""
    from beltrami.sparse.ops import gather_rows_flat

    x = torch.randn(7, 4, dtype=D, requires_grad=True)
    index = torch.tensor([3, 0, 0, 6, 2, 3, 3])
    torch.testing.assert_close(gather_rows_flat(x, index), x.index_select(0, index), rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda x: gather_rows_flat(x, index), (x,))


def test_each_own_backend_runs_on_its_device_only():
    """One dispatch table: cpp has CPU kernels, triton CUDA ones; the wrong device is an error before any
    work, never another kernel run silently."""
    from beltrami.sparse import ops
    from beltrami.sparse.spmm import DISPATCH, check_backend_device

    assert set(DISPATCH["cpp"]) == {"cpu"} and set(DISPATCH["triton"]) == {"cuda"}
    with pytest.raises(ValueError, match="'cpp' has no kernels for cuda tensors.*use 'triton' or 'torch'"):
        check_backend_device("cpp", "cuda")
    with pytest.raises(ValueError, match="'triton' has no kernels for cpu tensors.*use 'cpp' or 'torch'"):
        check_backend_device("triton", "cpu")
    check_backend_device("torch", "cuda")
    with pytest.raises(ValueError, match="'triton' runs Triton kernels on CUDA tensors; these are on the CPU"):
        ops.check_kernel_device(ops.TRITON, torch.ones(1))
    assert "triton" not in available_backends("cpu") and "cpp" not in available_backends("cuda")
    with pytest.raises(ValueError, match="sparse backend 'triton' has no kernels for cpu"):
        beltrami.fit("cora", sparse_backend="triton", epochs=1, progress=False)
