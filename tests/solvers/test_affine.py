"""The affine solver (frozen attention folded into L z + c, hand-written reverse pass) against autograd
through the same steps, and the folded function against the unfolded one."""
import pytest
import torch

from beltrami.functions import FrozenAttentionDiffusion
from beltrami.solvers import solve

from tests.reference import random_graph

D = torch.float64


def _function(add_source, separate=False, loops=True):
    g = random_graph(n=40, m=160, seed=3).symmetrize()
    g = g.add_self_loops() if loops else g
    f = FrozenAttentionDiffusion(g, 6, pos_dim=2, heads=2, attention_dim=4, add_source=add_source,
                                 separate_diffusivity=separate, init="xavier").double()
    with torch.no_grad():
        f.alpha_train.copy_(torch.tensor([0.7, -0.4]))
        f.beta_train.fill_(0.3)
    return f


def _solve_and_grad(f, z0, affine: bool, scheme="dopri5"):
    if not affine:
        f.affine_form = lambda: None  # the instance attribute hides the method: autograd through the steps
    try:
        sol = solve(f, z0 * 1.0, 2.0, scheme=scheme, rtol=1e-7, atol=1e-9, t_eval=[0.5, 1.3])
    finally:
        f.__dict__.pop("affine_form", None)
    weights = torch.arange(1, 4, dtype=D).view(3, 1, 1)
    loss = (sol.zs.square() * weights).sum()
    params = [z0] + [p for p in f.parameters() if p.requires_grad]
    return sol, torch.autograd.grad(loss, params, allow_unused=True)


@pytest.mark.parametrize("scheme", ["dopri5", "bosh3"])
@pytest.mark.parametrize("add_source", [True, False])
def test_reverse_pass_equals_autograd(scheme, add_source):
    f = _function(add_source)
    z0 = torch.randn(40, 6, dtype=D, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert f.affine_form() is None  # nothing folded before set_initial
    ours, g_ours = _solve_and_grad(f, z0, True, scheme)
    ref, g_ref = _solve_and_grad(f, z0, False, scheme)
    assert ours.stats == ref.stats
    torch.testing.assert_close(ours.zs, ref.zs, rtol=1e-12, atol=1e-12)
    compared = 0
    for a, b in zip(g_ours, g_ref):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
            compared += 1
    assert compared >= 6  # z0, keys and queries, alpha (and beta): gradients through L and c


def test_folded_function_equals_the_unfolded_one():
    f = _function(True)
    z0 = torch.randn(40, 6, dtype=D)
    f.set_initial(z0)
    assert f.affine_form() is not None
    z = torch.randn(40, 6, dtype=D)
    folded = f(torch.tensor(0.0), z)
    torch.testing.assert_close(folded, f._diffuse(f.values, z), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("separate, loops", [(True, True), (False, False)])
def test_not_folded_without_one_diffusivity_or_self_loops(separate, loops):
    f = _function(True, separate=separate, loops=loops)
    f.set_initial(torch.randn(40, 6, dtype=D))
    assert f.affine_form() is None
    z = torch.randn(40, 6, dtype=D)
    torch.testing.assert_close(f(torch.tensor(0.0), z), f._diffuse(f.values, z))
