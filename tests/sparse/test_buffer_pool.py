"""The C++ kernels' buffer pool: memory is reused only once nothing refers to it, and every kernel writes
every element of a recycled buffer."""
import os
import signal

import pytest
import torch

from beltrami.sparse import available_backends, buffer_pool_bytes, release_buffers, spmm
from beltrami.sparse.cpu_kernels import load

from tests.reference import random_graph

pytestmark = pytest.mark.skipif("cpp" not in available_backends(), reason="no C++ compiler")
MIB = 2**20


def test_pool_reuses_memory_only_once_nothing_refers_to_it():
    kernels = load()
    release_buffers()
    like = torch.empty(MIB // 4)  # 1 MiB of float32: the smallest size the pool serves
    a = kernels.pooled_empty_like(like)
    assert a.shape == like.shape and a.dtype == like.dtype and a._base is None
    ptr = a.data_ptr()
    b = kernels.pooled_empty_like(like)  # a is alive: other memory
    assert b.data_ptr() != ptr
    held, in_use = buffer_pool_bytes()
    assert held >= 2 * MIB and in_use >= 2 * MIB
    view = a[1:]
    del a  # the view still refers to the memory
    assert kernels.pooled_empty_like(like).data_ptr() != ptr
    del view
    c = kernels.pooled_empty_like(like)
    assert c.data_ptr() == ptr
    # smaller tensors come from malloc, untracked
    before = buffer_pool_bytes()
    small = kernels.pooled_empty_like(torch.empty(1000))
    assert buffer_pool_bytes() == before and small.numel() == 1000
    del b, c
    assert release_buffers() >= 2 * MIB
    assert buffer_pool_bytes() == (0, 0)


def test_saved_tensors_keep_their_buffers():
    """Two fused attention graphs alive at once: the second forward must not reuse the first one's saved
    attention, or the first backward reads the second's numbers."""
    g = random_graph(n=3000, m=80_000, isolated=50)  # [E, 4] float32: 1.2 MiB, pooled
    c = g.csr()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(g.num_nodes, 64, generator=gen)
    alpha = torch.tensor([0.5])
    kq1, kq2 = (torch.randn(g.num_nodes, 2, 4, 16, generator=gen, requires_grad=True) for _ in range(2))

    def fused(kq):
        return torch.ops.beltrami.attention_diffusion(c.crow, c.col, kq, x, alpha, c.t_crow, c.t_col, c.t_perm,
                                                      0.5)[0]

    (alone,) = torch.autograd.grad(fused(kq1).square().sum(), [kq1])
    release_buffers()
    out1 = fused(kq1)
    out2 = fused(kq2)
    (first,) = torch.autograd.grad(out1.square().sum(), [kq1])
    torch.autograd.grad(out2.square().sum(), [kq2])
    torch.testing.assert_close(first, alone, rtol=0, atol=0)


def test_kernels_overwrite_all_of_a_recycled_buffer():
    """Run each kernel, fill its outputs with NaN, drop them, run again: the second run gets the NaN
    buffers back (the pool held no more) and must give the first run's numbers."""
    g = random_graph(n=3000, m=80_000, isolated=50)  # [E, 4] float32: 1.2 MiB, pooled
    c = g.csr()
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(g.num_edges, generator=gen, requires_grad=True)
    x = torch.randn(g.num_nodes, 96, generator=gen, requires_grad=True)
    kq = torch.randn(g.num_nodes, 2, 4, 16, generator=gen, requires_grad=True)
    alpha = torch.tensor([0.5], requires_grad=True)
    w = torch.randn(g.num_nodes, 96, generator=gen)

    def run():
        out = spmm(g, v, x, backend="cpp")
        att_out = torch.ops.beltrami.attention_diffusion(c.crow, c.col, kq, x, alpha, c.t_crow, c.t_col,
                                                         c.t_perm, 0.5)[0]
        grads = torch.autograd.grad(((out + att_out) * w).sum(), [v, x, kq, alpha])
        return [out.detach(), att_out.detach(), *grads]

    release_buffers()
    first = run()
    expected = [t.clone() for t in first]
    held = buffer_pool_bytes()[0]
    assert held >= 6 * MIB  # both outputs, the attention and the gradients of x and kq come from the pool
    for t in first:
        t.fill_(float("nan"))
    del first
    second = run()
    assert buffer_pool_bytes()[0] == held
    for got, want in zip(second, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_projection_matches_linear_and_gradcheck():
    """``beltrami::projection`` (pooled output and x-gradient) against ``F.linear``, on a strided slice of x
    as the attention passes it; first derivatives only."""
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(3000, 120, generator=gen, dtype=torch.float64)
    x = z[:, 8:104].requires_grad_()  # 96 of 120 columns: not contiguous
    weight = torch.randn(64, 96, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(64, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3000, 64, generator=gen, dtype=torch.float64)
    out = torch.ops.beltrami.projection(x, weight, bias)
    torch.testing.assert_close(out, torch.nn.functional.linear(x, weight, bias))
    got = torch.autograd.grad((out * w).sum(), [x, weight, bias])
    want = torch.autograd.grad((torch.nn.functional.linear(x, weight, bias) * w).sum(), [x, weight, bias])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    small = [t[:20].detach().clone().requires_grad_() if t is x else t for t in (x, weight, bias)]
    assert torch.autograd.gradcheck(torch.ops.beltrami.projection, small)
    (gx,) = torch.autograd.grad(torch.ops.beltrami.projection(*small).square().sum(), [small[0]],
                                create_graph=True)
    with pytest.raises(RuntimeError, match="double backward through beltrami::projection"):
        gx.sum().backward()
    with pytest.raises(RuntimeError, match="x \\[N, K\\] and weight \\[M, K\\] expected"):
        torch.ops.beltrami.projection(x, weight.t(), bias)


def test_autograd_takes_pooled_gradients_over_without_copies():
    """Autograd accumulates a gradient in place, or takes it over as ``.grad``, only when nothing else
    refers to its storage: a pooled gradient must be such a tensor, or each backward copies it into a
    fresh (page-faulting) one."""
    g = random_graph(n=3000, m=80_000, isolated=50)
    v = torch.randn(g.num_edges)
    x = torch.randn(g.num_nodes, 96, requires_grad=True)  # 1.1 MiB
    w = torch.randn(g.num_nodes, 96)
    release_buffers()
    # two gradients of x to add up, then one to take over as x.grad
    (spmm(g, v, x, backend="cpp") + spmm(g, 2 * v, x, backend="cpp")).backward(w)
    (want,) = torch.autograd.grad(spmm(g, 3 * v, x, backend="torch"), [x], w)
    torch.testing.assert_close(x.grad, want, rtol=1e-4, atol=1e-4)
    # x.grad is one of the kernel's pooled gradients, the other added into it in place: no fresh tensor
    assert buffer_pool_bytes()[1] == x.grad.numel() * 4
    x.grad = None
    assert buffer_pool_bytes()[1] == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_pool_serves_both_sides_of_a_fork():
    """The pool's lock is taken around fork() (a child forked while another thread held it would wait on it
    forever) and let go in parent and child: both allocate and free afterwards."""
    kernels = load()
    like = torch.empty(MIB // 4)
    kept = kernels.pooled_empty_like(like)
    pid = os.fork()
    if pid == 0:  # the child: no torch op that could start threads, a deadline in case the lock is stuck
        signal.alarm(20)
        block = kernels.pooled_empty_like(like)
        del block
        release_buffers()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    again = kernels.pooled_empty_like(like)
    assert again.data_ptr() != kept.data_ptr()
