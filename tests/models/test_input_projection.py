"""``dropout(U) @ W + b`` for fixed inputs: masks, the sparse form, its gradient, the cache."""
import copy
import math

import pytest
import torch

from beltrami.models.input_projection import ProjectionCache, SparseRows, dropout, keep_mask, project

D = torch.float64


def _sparse_input(n=30, p=25, density=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, p, generator=g, dtype=D)
    return u * (torch.rand(n, p, generator=g, dtype=D) < density)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.6803])
def test_keep_mask_keeps_one_minus_p(p):
    m = keep_mask((1000, 1000), p, torch.device("cpu"))
    kept = float(m.double().mean())
    sigma = math.sqrt(p * (1 - p) / m.numel())
    assert abs(kept - (1 - p)) < 6 * sigma


def test_keep_mask_follows_torch_seed():
    torch.manual_seed(3)
    a = keep_mask((50, 40), 0.5, torch.device("cpu"))
    b = keep_mask((50, 40), 0.5, torch.device("cpu"))
    torch.manual_seed(3)
    assert torch.equal(a, keep_mask((50, 40), 0.5, torch.device("cpu")))
    assert not torch.equal(a, b)


def test_dropout_is_unbiased_and_off_in_eval():
    x = torch.ones(400, 500)
    assert abs(float(dropout(x, 0.3, True).mean()) - 1.0) < 0.01
    y = dropout(x, 0.3, True)
    values = torch.unique(y)
    assert len(values) == 2 and float(values[0]) == 0.0 and float(values[1]) == pytest.approx(1 / 0.7)
    assert dropout(x, 0.3, False) is x and dropout(x, 0.0, True) is x


@pytest.mark.parametrize("layout", ["dense", "csr", "coo", "rows"])
def test_projection_equals_dense_reference(layout):
    u = _sparse_input()
    w = torch.randn(25, 7, dtype=D, requires_grad=True)
    b = torch.randn(7, dtype=D)
    arg = {"dense": u, "csr": u.to_sparse_csr(), "coo": u.to_sparse(), "rows": SparseRows.from_tensor(u)}[layout]
    out = project(arg, w, b, 0.5, False, ProjectionCache())
    torch.testing.assert_close(out, u @ w + b)
    g = torch.randn(30, 7, dtype=D)
    (grad,) = torch.autograd.grad(out, w, g)
    torch.testing.assert_close(grad, u.t() @ g)


@pytest.mark.parametrize("form", ["sparse", "dense"])
def test_projection_under_dropout_has_the_gradient_of_its_mask(form, monkeypatch):
    """With W = I the output is dropout(U) itself; the gradient of W must be that matrix transposed times G.
    The dense form runs in blocks of two rows here, so the blocks' seams are crossed."""
    import beltrami.models.input_projection as ip

    monkeypatch.setattr(ip, "BLOCK", 50)
    u = _sparse_input(density=0.3)
    arg = SparseRows.from_tensor(u) if form == "sparse" else u
    w = torch.eye(25, dtype=D, requires_grad=True)
    torch.manual_seed(0)
    out = project(arg, w, None, 0.4, True)
    kept = out != 0
    torch.testing.assert_close(out[kept], (u / 0.6)[kept])
    assert 0 < int(kept.sum()) < int((u != 0).sum())  # some stored entries dropped, some kept
    g = torch.randn(30, 25, dtype=D)
    (grad,) = torch.autograd.grad(out, w, g)
    torch.testing.assert_close(grad, out.detach().t() @ g)


def test_cache_converts_once_and_notices_changes():
    cache = ProjectionCache()
    u = _sparse_input()
    form = cache.form(u)
    assert isinstance(form, SparseRows) and form.nnz == int((u != 0).sum())
    assert cache.form(u) is form
    u.mul_(2.0)  # in place: a new version
    assert cache.form(u) is not form
    assert cache.form(u.clone()) is not cache.form(u)
    dense = torch.rand(10, 10, dtype=D) + 0.1
    assert cache.form(dense) is dense
    assert cache.form(dense.to_sparse_csr()).layout == torch.strided  # stored densely: all entries present


def test_encoders_survive_copy_and_pickle(tmp_path):
    from beltrami.models import FeatureEncoder

    enc = FeatureEncoder(25, 4)
    enc(_sparse_input().float())
    twin = copy.deepcopy(enc)
    torch.save(enc, tmp_path / "enc.pt")
    again = torch.load(tmp_path / "enc.pt", weights_only=False)
    x = _sparse_input(seed=1).float()
    enc.eval(), twin.eval(), again.eval()
    torch.testing.assert_close(twin(x), enc(x))
    torch.testing.assert_close(again(x), enc(x))
