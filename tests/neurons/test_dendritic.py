"""Tests of neuroplast.neurons.dendritic: the false-match formula (arXiv:1601.00720) against exact
fractions and scipy, its Monte Carlo estimators, the union variant, DendriticLayer and KWinners."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from scipy.stats import hypergeom

from neuroplast.neurons.dendritic import (
    DendriticLayer,
    KWinners,
    false_match_probability,
    log_false_match_probability,
    monte_carlo_false_match,
    monte_carlo_union_false_match,
    union_false_match_probability,
    union_size_distribution,
)


def _exact(n: int, a: int, s: int, theta: int) -> Fraction:
    num = sum(math.comb(s, b) * math.comb(n - s, a - b) for b in range(theta, min(s, a) + 1))
    return Fraction(num, math.comb(n, a))


# -- formula ----------------------------------------------------------------------------------------
def test_oracle_point_of_the_paper():
    p = false_match_probability(10000, 300, 24, 12)
    assert p == pytest.approx(8.38e-13, rel=5e-3)
    assert p == pytest.approx(float(_exact(10000, 300, 24, 12)), rel=1e-9)
    assert p == pytest.approx(hypergeom.sf(11, 10000, 24, 300), rel=1e-9)


@pytest.mark.parametrize(
    "n,a,s,theta",
    [
        (10, 3, 4, 1),
        (10, 3, 4, 3),
        (20, 20, 5, 5),
        (30, 0, 5, 1),
        (50, 10, 8, 4),
        (200, 40, 20, 10),
        (7, 6, 5, 4),
    ],
)
def test_matches_exact_fractions_small_cases(n, a, s, theta):
    assert false_match_probability(n, a, s, theta) == pytest.approx(
        float(_exact(n, a, s, theta)), rel=1e-10, abs=0
    )


def test_stable_for_large_n_against_scipy():
    for n, a, s, theta in [
        (10_000, 300, 24, 1),
        (100_000, 2000, 6, 6),
        (1_000_000, 20_000, 40, 20),
        (50_000, 64, 24, 12),
    ]:
        ref = hypergeom.logsf(theta - 1, n, s, a)
        assert log_false_match_probability(n, a, s, theta) == pytest.approx(ref, rel=1e-8)
    # Table 1B of the paper: n=100000, a=2000, theta=s=6 -> 6.353e-11
    assert false_match_probability(100_000, 2000, 6, 6) == pytest.approx(6.35309e-11, rel=1e-5)
    assert log_false_match_probability(10_000, 10, 24, 12) == -math.inf  # a < theta: impossible


def test_monotone_in_theta_and_sparsity():
    ps = [false_match_probability(2048, 40, 24, t) for t in range(1, 25)]
    assert all(x > y for x, y in zip(ps, ps[1:], strict=False))
    assert false_match_probability(2048, 40, 24, 12) < false_match_probability(2048, 1024, 24, 12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n": 100, "a": 10, "s": 8, "theta": 0}, "theta"),
        ({"n": 100, "a": 10, "s": 8, "theta": 9}, "theta"),
        ({"n": 100, "a": 101, "s": 8, "theta": 2}, "a"),
        ({"n": 100, "a": 10, "s": 101, "theta": 2}, "s"),
        ({"n": 0, "a": 0, "s": 1, "theta": 1}, "n"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        false_match_probability(**kwargs)
    with pytest.raises(TypeError, match="theta"):
        false_match_probability(100, 10, 8, 2.5)


# -- Monte Carlo -------------------------------------------------------------------------------------
def test_monte_carlo_within_binomial_ci():
    n, a, s = 1000, 64, 24
    thetas = [3, 4, 5, 6]
    ests = monte_carlo_false_match(n, a, s, thetas, 400_000, torch.Generator().manual_seed(0))
    for t, est in zip(thetas, ests, strict=True):
        p = false_match_probability(n, a, s, t)
        assert p >= 1e-3
        assert est.stderr == pytest.approx(math.sqrt(p * (1 - p) / est.trials), rel=0.1)
        assert abs(est.p - p) < 4.5 * est.stderr, (t, est, p)


def test_monte_carlo_vectors_method_and_determinism():
    est = monte_carlo_false_match(300, 30, 12, 3, 40_000, torch.Generator().manual_seed(1), method="vectors")
    p = false_match_probability(300, 30, 12, 3)
    assert abs(est.p - p) < 4.5 * est.stderr
    again = monte_carlo_false_match(
        300, 30, 12, 3, 40_000, torch.Generator().manual_seed(1), method="vectors"
    )
    assert again == est
    with pytest.raises(ValueError, match="generator"):
        monte_carlo_false_match(300, 30, 12, 3, 10, None)
    with pytest.raises(ValueError, match="method"):
        monte_carlo_false_match(300, 30, 12, 3, 10, torch.Generator(), method="exact")


# -- union property ----------------------------------------------------------------------------------
def test_union_size_distribution_exact():
    p = union_size_distribution(10, 3, 2)
    # two random 3-subsets of 10: overlap j is hypergeometric(10, 3, 3); union size = 6 - j
    for j in range(4):
        ref = math.comb(3, j) * math.comb(7, 3 - j) / math.comb(10, 3)
        assert float(p[6 - j]) == pytest.approx(ref, rel=1e-12)
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    assert float(union_size_distribution(50, 7, 1)[7]) == 1.0


def test_union_reduces_to_single_segment_and_matches_monte_carlo():
    assert union_false_match_probability(500, 20, 8, 3, 1) == pytest.approx(
        false_match_probability(500, 20, 8, 3)
    )
    # with s*m << n the union has ~s*m synapses: the paper's formula with s -> s*m is close
    p_union = union_false_match_probability(10_000, 200, 10, 3, 4)
    assert p_union == pytest.approx(false_match_probability(10_000, 200, 40, 3), rel=0.02)
    assert p_union < false_match_probability(10_000, 200, 40, 3)  # overlapping patterns: fewer synapses
    n, a, s, theta, m = 400, 20, 10, 3, 5
    p = union_false_match_probability(n, a, s, theta, m)
    est = monte_carlo_union_false_match(n, a, s, theta, m, 30_000, torch.Generator().manual_seed(2))
    assert p >= 1e-3 and abs(est.p - p) < 4.5 * est.stderr, (est, p)


# -- DendriticLayer ----------------------------------------------------------------------------------
def test_dendritic_layer_absolute_max_gating_by_hand():
    layer = DendriticLayer(3, 2, num_segments=3, context_dim=2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
        layer.bias.copy_(torch.tensor([0.5, -1.0]))
        # unit 0 segments: activations on c=(1,1): 0.5, -3, 1 -> d* = -3 (largest |d|, negative)
        # unit 1 segments: 2, 0.1, -1 -> d* = 2
        layer.segments.copy_(
            torch.tensor([[[0.5, 0.0], [-1.0, -2.0], [1.0, 0.0]], [[1.0, 1.0], [0.1, 0.0], [0.0, -1.0]]])
        )
    x = torch.tensor([[1.0, 1.0, 1.0]])
    y = layer(x, torch.tensor([[1.0, 1.0]]))
    expected = torch.tensor(
        [[1.5 * torch.sigmoid(torch.tensor(-3.0)), 1.0 * torch.sigmoid(torch.tensor(2.0))]]
    )
    torch.testing.assert_close(y, expected)


def test_dendritic_layer_sparsity_mask_and_gradients():
    layer = DendriticLayer(20, 6, 4, 5, weight_sparsity=0.5, generator=torch.Generator().manual_seed(0))
    assert layer.weight_mask.shape == (6, 20)
    assert (layer.weight_mask.sum(1) == 10).all()
    assert (layer.weight[layer.weight_mask == 0] == 0).all()
    assert "weight_mask" in layer.state_dict()
    x, c = torch.randn(8, 20), torch.randn(8, 5)
    layer(x, c).sum().backward()
    assert (layer.weight.grad[layer.weight_mask == 0] == 0).all()
    assert layer.segments.grad.abs().sum() > 0
    # only the winning segment of each unit gets gradient on a single sample
    layer.zero_grad()
    layer(x[:1], c[:1]).sum().backward()
    assert ((layer.segments.grad.abs().sum(-1) > 0).sum(-1) == 1).all()
    # no bias, no mask: y = W x * sigmoid(d*)
    plain = DendriticLayer(20, 6, 4, 5, bias=False)
    assert (
        plain.bias is None and plain.weight_mask is None and set(plain.state_dict()) == {"weight", "segments"}
    )
    d = plain.segment_activations(c)  # (8, 6, 4)
    d_star = d.gather(-1, d.abs().argmax(-1, keepdim=True)).squeeze(-1)
    torch.testing.assert_close(plain(x, c), (x @ plain.weight.T) * torch.sigmoid(d_star))
    # extra batch dimensions
    assert layer(torch.randn(2, 3, 20), torch.randn(2, 3, 5)).shape == (2, 3, 6)


def test_dendritic_layer_bad_input_leaves_it_unchanged():
    layer = DendriticLayer(4, 3, 2, 5)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with pytest.raises(ValueError, match="context_dim=5"):
        layer(torch.randn(2, 4), torch.randn(2, 6))
    with pytest.raises(ValueError, match="in_features=4"):
        layer(torch.randn(2, 3), torch.randn(2, 5))
    with pytest.raises(ValueError, match="batch shape"):
        layer(torch.randn(2, 4), torch.randn(3, 5))
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k])
    with pytest.raises(ValueError, match="weight_sparsity"):
        DendriticLayer(4, 3, 2, 5, weight_sparsity=1.0)
    with pytest.raises(ValueError, match="num_segments"):
        DendriticLayer(4, 3, 0, 5)


# -- KWinners ----------------------------------------------------------------------------------------
def test_kwinners_eval_keeps_top_k():
    kw = KWinners(10, k=3).eval()
    x = torch.tensor([[5.0, -1.0, 3.0, 0.0, 9.0, 2.0, 1.0, 4.0, -3.0, 0.5]])
    y = kw(x)
    assert torch.equal(y, torch.tensor([[5.0, 0, 0, 0, 9.0, 0, 0, 4.0, 0, 0]]))
    assert kw.learning_iterations == 0 and (kw.duty_cycle == 0).all()  # eval changes no state
    assert KWinners(2048, percent_on=0.05).k == 102


def test_kwinners_duty_cycle_and_boosting():
    kw = KWinners(4, k=1, boost_strength=1.0, duty_cycle_period=10)
    x = torch.tensor([[4.0, 3.0, 2.0, 1.0]]).repeat(5, 1)  # unit 0 wins all 5 samples
    y = kw(x)
    assert (y[:, 0] == 4.0).all() and (y[:, 1:] == 0).all()
    torch.testing.assert_close(kw.duty_cycle, torch.tensor([1.0, 0.0, 0.0, 0.0]))  # period = 5 samples so far
    boost = kw.boost_factors()
    torch.testing.assert_close(boost, torch.exp(torch.tensor([0.25 - 1.0, 0.25, 0.25, 0.25])))
    # boosted scores: 4 e^-0.75 = 1.89 < 3 e^0.25 = 3.85: unit 1 wins in training, unit 0 still in eval
    assert kw.eval()(x[:1])[0, 0] == 4.0
    y = kw.train()(x)
    assert (y[:, 1] == 3.0).all() and (y[:, [0, 2, 3]] == 0).all()
    # period now 10 samples: duty = (duty * (10 - 5) + wins) / 10
    torch.testing.assert_close(kw.duty_cycle, torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert int(kw.learning_iterations) == 10
    kw.update_boost_strength()
    assert float(kw.boost_strength) == pytest.approx(0.9)
    assert set(kw.state_dict()) == {"duty_cycle", "boost_strength", "learning_iterations"}


def test_kwinners_bad_input():
    with pytest.raises(ValueError, match="k"):
        KWinners(5, k=6)
    with pytest.raises(ValueError, match="percent_on"):
        KWinners(5, percent_on=1.5)
    with pytest.raises(ValueError, match="exactly one"):
        KWinners(5)
    kw = KWinners(5, k=2)
    with pytest.raises(ValueError, match="num_units=5"):
        kw(torch.randn(3, 4))
    assert kw.learning_iterations == 0 and (kw.duty_cycle == 0).all()
