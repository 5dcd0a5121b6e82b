"""FitConfig: bad options refused before any work, and the presets equal to the values they name."""
import pytest
import torch

import beltrami
from beltrami.training import FitConfig


def test_config_errors():
    with pytest.raises(ValueError, match="unknown fit option.*'learning_rate'.*lr"):
        beltrami.fit("cora", learning_rate=0.1)
    with pytest.raises(ValueError, match="unknown model 'sage'"):
        FitConfig.build(model="sage")
    with pytest.raises(ValueError, match=r"dropout must be a finite number in \[0, 1\), got 1.5"):
        FitConfig.build(dropout=1.5)
    with pytest.raises(ValueError, match="unknown ppr_normalization 'sym'"):
        FitConfig.build(ppr_normalization="sym")
    with pytest.raises(ValueError, match="ppr_topk must be >= 1, got 0"):
        FitConfig.build(ppr_topk=0)
    big = beltrami.load_dataset("synthetic", num_nodes=20_001, num_features=4, avg_degree=2, lcc=False)
    with pytest.raises(ValueError, match="ppr_topk=None keeps all 20001 entries.*up to 20,000 nodes"):
        beltrami.fit(big, pos_encoding="ppr", ppr_topk=None, epochs=1, progress=False)
    with pytest.raises(ValueError, match="unknown preset 'best'"):
        beltrami.fit("cora", preset="best")
    with pytest.raises(ValueError, match="has values for"):
        FitConfig.build("synthetic", "paper")
    with pytest.raises(TypeError, match="cannot train on a list"):
        beltrami.fit([1, 2, 3], progress=False)


@pytest.mark.parametrize("kw, error, match", [
    # before each: a TypeError deep in torch or the dataclass, an OverflowError, an UnboundLocalError, an
    # AttributeError of a scripted module, or a run that went ahead (patience=-1, checkpoint_every without a dir)
    (dict(epochs="3"), TypeError, r"epochs must be an int, got '3' \(str\)"),
    (dict(epochs=2.5), TypeError, r"epochs must be an int, got 2.5 \(float\)"),
    (dict(epochs=True), TypeError, "epochs must be an int, got True"),
    (dict(hidden=8.5), TypeError, "hidden must be an int"),
    (dict(lr="0.1"), TypeError, r"lr must be a number, got '0.1' \(str\)"),
    (dict(lr=float("nan")), ValueError, r"lr must be a finite number in \(0, inf\), got nan"),
    (dict(time=float("inf")), ValueError, "time must be a finite number"),
    (dict(dropout="0.5"), TypeError, "dropout must be a number"),
    (dict(patience=-1), ValueError, "patience must be >= 1, got -1"),
    (dict(patience=0), ValueError, "patience must be >= 1, got 0"),
    (dict(seeds=[]), ValueError, r"seeds=\[\] names no run"),
    (dict(seeds=[0, 1.5]), TypeError, "each of seeds must be an int"),
    (dict(seeds="01"), TypeError, "seeds must be a list of ints"),
    (dict(self_loops="yes"), TypeError, "self_loops must be True or False"),
    (dict(device="gpu"), ValueError, "device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (dict(scheme="rk5"), ValueError, "unknown scheme 'rk5'"),
    (dict(scheme="rk4"), ValueError, "scheme rk4 needs step_size"),
    (dict(scheme="rk4", step_size=float("nan")), ValueError, "step_size must be a finite number"),
    (dict(rtol=-1.0), ValueError, r"rtol must be a finite number in \[0, inf\)"),
    (dict(scheme="implicit_euler", step_size=1.0, compile="script"), ValueError,
     "compile='script' applies to explicit and adaptive schemes"),
    (dict(checkpoint_every=1), ValueError, "checkpoint_every=1 needs checkpoint_dir"),
    (dict(resume=True), ValueError, "resume=True needs checkpoint_dir"),
    (dict(checkpoint_dir="ck"), ValueError, "with checkpoint_every=0 writes no checkpoint"),
    (dict(attention_kind="dot"), ValueError, "unknown attention_kind 'dot'"),
])
def test_bad_options_are_refused_before_any_work(kw, error, match):
    with pytest.raises(error, match=match):
        FitConfig.build(**kw)


def test_cuda_device_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="device='cuda', but PyTorch sees no CUDA device"):
        FitConfig.build(device="cuda")


def test_paper_presets_follow_best_params():
    cfg = FitConfig.build("cora", "paper")
    # the official code's values at full precision (not rounded to four digits)
    assert (cfg.solver.time, cfg.solver.scheme, cfg.model.heads, cfg.model.attention_dim, cfg.train.optimizer) == (
        18.294754260552843, "dopri5", 8, 128, "adamax")
    assert cfg.train.lr == 0.022924849756740397
    assert abs(cfg.solver.atol - 821.9773048827274e-7) < 1e-15 and abs(cfg.solver.rtol - 821.9773048827274e-9) < 1e-15
    m = cfg.model
    assert m.frozen and m.detach_source  # the official set_x0 detaches the source's z(0)
    assert m.hidden + m.pos_dim == 80 and m.normalisation == "squareplus" and m.add_source
    assert m.normalise_over == "cols" and m.pos_dropout is None  # official orientation; input dropout on both
    assert (cfg.encoding.ppr_normalization, cfg.encoding.ppr_topk, cfg.train.select_time) == ("sym-col", None, 3.0)
    assert not FitConfig.build("citeseer", "paper-beltrami").model.frozen
    arxiv = FitConfig.build("synthetic-arxiv", "paper").flat()  # the arxiv-sized stand-in takes ogbn-arxiv's values
    assert (round(arxiv["time"], 3), arxiv["heads"], arxiv["pos_encoding"], arxiv["deepwalk_dim"]) == (
        3.676, 2, "deepwalk", 64)
    assert (arxiv["backprop"], arxiv["adjoint_scheme"], arxiv["adjoint_step_size"]) == ("adjoint", "rk4", 1.0)
    # official attention_norm_idx: 0 (rows) on ogbn-arxiv; CiteSeer's Beltrami exp kernel is the product form
    assert arxiv["normalise_over"] == "rows"
    assert FitConfig.build("citeseer", "paper").model.attention_kind == "exp_product"


def test_paper_preset_for_baselines_is_their_own_papers_settings():
    gcn = FitConfig.build("citeseer", "paper", model="gcn").flat()
    assert [gcn[k] for k in ("hidden", "dropout", "lr", "weight_decay", "epochs")] == [16, 0.5, 0.01, 5e-4, 200]
    gat = FitConfig.build("cora", "paper", model="gat", epochs=5).flat()  # keyword options still override
    assert [gat[k] for k in ("dropout", "lr", "epochs", "pos_encoding")] == [0.6, 0.005, 5, None]
    assert gcn["feature_norm"] == gat["feature_norm"] == "row"
    assert FitConfig.build("cora", "paper").data.feature_norm is None


def test_the_paper_preset_of_blend_knn_is_the_official_gdc_rewiring():
    for dataset, k in (("cora", 64), ("citeseer", 128)):  # the official gdc_k
        cfg = FitConfig.build(dataset, "paper", model="blend-knn")
        enc = cfg.encoding
        assert (enc.rewire, enc.rewire_k, enc.rewire_symmetric, enc.rewire_every) == ("ppr", k, False, 0)
        assert enc.ppr_normalization == "sym-col" and cfg.data.self_loops
    assert FitConfig.build("cora", "fast", model="blend-knn").encoding.rewire == "knn"

