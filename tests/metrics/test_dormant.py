"""Tests for neuroplast.metrics.dormant against hand-worked networks and the papers' reference formulas."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neuroplast.metrics import dormant_mask, dormant_ratio, dormant_scores


def _mean_abs(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    """Oracle statistics without the Recorder: E|h| over the batch of each named module's output."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    mods = dict(model.named_modules())
    handles = [
        mods[n].register_forward_hook(
            lambda m, i, o, n=n: out.__setitem__(n, {"mean_abs": o.detach().abs().mean(0), "count": len(o)})
        )
        for n in names
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return out


def _scaled_rows_net() -> tuple[nn.Module, torch.Tensor]:
    """Linear(4, 4) whose output i is s_i * (+-1): E|h_i| = s_i exactly; s sums to 4 so mean = 1."""
    lin = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.diag(torch.tensor([0.0, 0.0625, 1.0, 2.9375])))
    signs = torch.tensor([[1.0, -1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, 1.0], [1.0, 1.0, -1.0, -1.0]])
    return nn.Sequential(lin), signs


def test_scores_of_scaled_rows_are_exact():
    net, x = _scaled_rows_net()
    stats = _mean_abs(net, x, ["0"])["0"]
    torch.testing.assert_close(
        dormant_scores(stats, eps=0.0),
        torch.tensor([0.0, 0.0625, 1.0, 2.9375], dtype=torch.float64),
        rtol=0,
        atol=0,
    )
    # tau = 0.025: only the silent neuron; tau = 0.0625: the tie counts as dormant (s <= tau, ReDo).
    assert dormant_mask(stats).tolist() == [True, False, False, False]
    assert dormant_ratio(stats) == 0.25
    assert dormant_mask(stats, tau=0.0625, eps=0.0).tolist() == [True, True, False, False]
    assert dormant_ratio(stats, tau=0.0625, eps=0.0) == 0.5
    assert dormant_ratio(stats, tau=1.0, eps=0.0) == 0.75


def test_normalize_none_thresholds_raw_mean_abs():
    net, x = _scaled_rows_net()
    with torch.no_grad():
        net[0].weight.mul_(0.01)  # E|h| = [0, 6.25e-4, 0.01, 0.029375]; layer-normalised scores unchanged
    stats = _mean_abs(net, x, ["0"])["0"]
    assert dormant_mask(stats, tau=0.02, normalize=None).tolist() == [True, True, True, False]
    assert dormant_mask(stats, tau=0.02, normalize="layer").tolist() == [True, False, False, False]
    torch.testing.assert_close(dormant_scores(stats, normalize=None), stats["mean_abs"].double())


def test_relu_units_dead_by_negative_bias_post_vs_pre_activation():
    torch.manual_seed(0)
    lin = nn.Linear(3, 5)
    with torch.no_grad():
        lin.weight.uniform_(-0.1, 0.1)
        lin.bias.copy_(torch.tensor([-10.0, -10.0, 1.0, 2.0, 3.0]))
    net = nn.Sequential(lin, nn.ReLU())
    x = torch.rand(64, 3)  # |W x| <= 0.3 < 10: units 0, 1 never fire
    stats = _mean_abs(net, x, ["0", "1"])
    # ReDo convention (post-activation): the two dead ReLUs have E|h| = 0 -> dormant even at tau = 0.
    assert dormant_mask(stats["1"], tau=0.0).tolist() == [True, True, False, False, False]
    # DrM convention (Linear outputs, pre-activation): |h| ~ 10 there, so nothing is dormant.
    assert dormant_ratio(stats["0"]) == 0.0
    assert dormant_ratio(stats, per_site=True) == {"0": 0.0, "1": 0.4}


def test_several_sites_pool_over_neurons_not_sites():
    a = {"mean_abs": torch.tensor([0.0, 1.0, 1.0, 2.0])}  # 1 of 4 dormant
    b = {"mean_abs": torch.tensor([0.0, 0.0, 0.0, 2.0, 2.0, 2.0])}  # 3 of 6 dormant
    stats = {"a": a, "b": b}
    assert dormant_ratio(stats) == pytest.approx(4 / 10)  # not the mean of 0.25 and 0.5
    assert dormant_ratio(stats, per_site=True) == {"a": 0.25, "b": 0.5}
    masks = dormant_mask(stats)
    assert masks["a"].tolist() == [True, False, False, False]
    assert masks["b"].tolist() == [True, True, True, False, False, False]
    # Scores are normalised within each site: b's live neurons score 2 / 1 = 2.
    assert dormant_scores(stats)["b"][3].item() == pytest.approx(2.0)


def test_accepts_raw_tensor_and_recorder_like_object():
    m = torch.tensor([0.0, 1.0, 3.0])

    class FakeRecorder:
        stats = {"s": {"mean_abs": m}}

    assert dormant_ratio(m) == pytest.approx(1 / 3)
    assert dormant_ratio(FakeRecorder()) == pytest.approx(1 / 3)


def test_silent_layer_is_all_dormant():
    zeros = torch.zeros(5)
    assert dormant_ratio(zeros) == 1.0  # ReDo: 0 / (0 + 1e-9) = 0 <= tau
    assert dormant_ratio(zeros, eps=0.0) == 1.0


def _drm_reference_ratio(h: torch.Tensor, tau: float) -> float:
    """DrM's reference rule on a batch of Linear outputs: E|h_i| < tau * mean_k E|h_k|."""
    mean_output = h.abs().mean(0)
    return float((mean_output < mean_output.mean() * tau).double().mean())


def _redo_reference_ratio(h: torch.Tensor, tau: float) -> float:
    """ReDo's reference rule: score = E|h_i| / (mean(E|h|) + 1e-9) <= tau."""
    score = h.abs().mean(0)
    score = score / (score.mean() + 1e-9)
    return float((score <= tau).double().mean())


@pytest.mark.parametrize("tau", [0.025, 0.1, 0.5])
def test_matches_reference_formulas_on_random_activations(tau):
    g = torch.Generator().manual_seed(3)
    scale = torch.rand(200, generator=g) ** 4  # many small neurons, no exact ties with the threshold
    h = torch.randn(32, 200, generator=g) * scale
    m = h.abs().mean(0)
    assert dormant_ratio(m, tau=tau) == pytest.approx(_redo_reference_ratio(h, tau), abs=0)
    assert dormant_ratio(m, tau=tau, eps=0.0) == pytest.approx(_drm_reference_ratio(h, tau), abs=0)
    assert 0.0 < dormant_ratio(m, tau=0.5) < 1.0  # the data really straddle the threshold


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=1, max_size=20),
    st.floats(1e-3, 1e3),
)
def test_layer_scores_are_scale_invariant(values, c):
    m = torch.tensor(values, dtype=torch.float64)
    s1, s2 = dormant_scores(m, eps=0.0), dormant_scores(m * c, eps=0.0)
    torch.testing.assert_close(s1, s2, rtol=1e-9, atol=1e-12)
    if m.sum() > 0:
        assert s1.mean().item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("stats", "kwargs", "exc", "match"),
    [
        ({"mean": torch.ones(3)}, {}, ValueError, "mean_abs"),
        ({"a": {"max_abs": torch.ones(3)}}, {}, ValueError, "mean_abs"),
        ({}, {}, ValueError, "empty"),
        (torch.ones(2, 3), {}, ValueError, "1-D"),
        (torch.tensor([1.0, -1.0]), {}, ValueError, ">= 0"),
        (torch.tensor([1.0, float("nan")]), {}, ValueError, "NaN"),
        ([1.0, 2.0], {}, TypeError, "stats"),
        ({"a": 3}, {}, TypeError, "stats\\['a'\\]"),
        ({"mean_abs": torch.zeros(3), "count": torch.tensor(0)}, {}, ValueError, "no samples"),
        (torch.ones(3), {"normalize": "global"}, ValueError, "normalize"),
        (torch.ones(3), {"tau": -0.1}, ValueError, "tau"),
        (torch.ones(3), {"tau": float("nan")}, ValueError, "tau"),
        (torch.ones(3), {"eps": -1.0}, ValueError, "eps"),
    ],
)
def test_bad_input_raises_clear_errors(stats, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        dormant_ratio(stats, **kwargs)


def test_with_recorder():
    core = pytest.importorskip("neuroplast.core")
    net, x = _scaled_rows_net()
    net = nn.Sequential(net[0], nn.ReLU())
    with core.Recorder(net, core.find_sites(net, ["0", "1"])) as rec:
        with torch.no_grad():
            net(x)
    oracle = _mean_abs(net, x, ["0", "1"])
    for name in ("0", "1"):
        torch.testing.assert_close(
            dormant_scores(rec.stats[name]), dormant_scores(oracle[name]), rtol=1e-6, atol=1e-9
        )
    assert dormant_ratio(rec.stats["0"]) == 0.25
    assert dormant_ratio(rec.stats, per_site=True) == dormant_ratio(oracle, per_site=True)
