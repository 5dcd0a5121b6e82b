"""Models refuse bad hyperparameters when built and inputs of the wrong shape when called, naming them
(before: a float width failed inside torch.empty, T = nan was accepted, and x with a row too few failed in
torch.sparse.sampled_addmm)."""
import pytest
import torch

from beltrami import BLEND, GAT, GCN

from tests.reference import random_graph

N = 30


@pytest.fixture(scope="module")
def graph():
    return random_graph(n=N, m=120, seed=0).symmetrize()


@pytest.mark.parametrize("kw, error, match", [
    (dict(in_channels=0), ValueError, "in_channels must be >= 1, got 0"),
    (dict(hidden_features=8.5), TypeError, "hidden_features must be an int, got 8.5"),
    (dict(time=float("nan")), ValueError, r"time must be a finite number in \(0, inf\), got nan"),
    (dict(dropout=2.0), ValueError, r"dropout must be a finite number in \[0, 1\), got 2.0"),
    (dict(scheme="rk4"), ValueError, "scheme rk4 needs step_size"),
    (dict(scheme="rk4", step_size=0.0), ValueError, "step_size must be a finite number"),
    (dict(rtol=-1.0), ValueError, "rtol must be a finite number"),
    (dict(backprop="reverse"), ValueError, "unknown backprop mode 'reverse'"),
])
def test_blend_refuses_bad_hyperparameters(graph, kw, error, match):
    args = {"in_channels": 8, "out_channels": 3, **kw}
    with pytest.raises(error, match=match):
        BLEND(args.pop("in_channels"), args.pop("out_channels"), graph, **args)


def test_inputs_of_the_wrong_shape_are_named(graph):
    x = torch.randn(N, 8)
    blend = BLEND(8, 3, graph, pos_channels=4)
    with pytest.raises(ValueError, match=r"x must have shape \[30, 8\] .*got \(29, 8\)"):
        blend(x[1:], torch.randn(N, 4))
    with pytest.raises(ValueError, match=r"pos must have shape \[30, 4\] .*got \(30, 5\)"):
        blend(x, torch.randn(N, 5))
    with pytest.raises(TypeError, match="x must be floating point"):
        blend(x.long(), torch.randn(N, 4))
    for model in (GCN(8, 3, graph), GAT(8, 3, graph)):
        with pytest.raises(ValueError, match=r"x must have shape \[30, 8\]"):
            model(x[:, :7])


def test_solve_names_a_state_that_does_not_fit_the_function(graph):
    from beltrami.functions import LaplacianDiffusion
    from beltrami.solvers import solve

    f = LaplacianDiffusion(graph, 4)
    with pytest.raises(ValueError, match="z0 has 29 rows but the graph has 30 nodes"):
        solve(f, torch.randn(N - 1, 4), 1.0)
    with pytest.raises(ValueError, match=r"z0 must have 4 columns \(the function's dim\), got 3"):
        solve(f, torch.randn(N, 3), 1.0)
