"""Synchrony measures against worked examples: identical, shifted and independent oscillators."""

import math

import numpy as np
import pytest
import torch

from neuroplast.metrics.sync import (
    analytic_phase,
    burst_onsets,
    cross_correlation,
    kuramoto_order,
    phases_from_events,
    rank_correlation,
    spike_events,
)


def test_cross_correlation_matches_numpy_corrcoef():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 300))
    x[1] = 0.7 * x[0] + 0.3 * x[1]
    c = np.corrcoef(x)
    pairs = [c[i, j] for i in range(4) for j in range(i + 1, 4)]
    assert float(cross_correlation(torch.tensor(x))) == pytest.approx(np.mean(pairs), abs=1e-12)
    ref = [c[0, j] for j in range(1, 4)]
    assert float(cross_correlation(torch.tensor(x), reference=0)) == pytest.approx(np.mean(ref), abs=1e-12)


def test_cross_correlation_constant_units_and_batch():
    x = torch.zeros(2, 3, 50, dtype=torch.float64)
    t = torch.arange(50, dtype=torch.float64)
    x[0, 0], x[0, 1], x[0, 2] = torch.sin(t), torch.sin(t), -torch.sin(t)
    x[1, 0] = torch.sin(t)  # the others are constant (a fixed point): no defined correlation
    g = cross_correlation(x)
    assert float(g[0]) == pytest.approx((1 - 1 - 1) / 3, abs=1e-12)
    assert math.isnan(float(g[1]))
    with pytest.raises(ValueError, match="two units"):
        cross_correlation(torch.zeros(1, 10))


def test_spike_phases_and_kuramoto():
    t = 400
    ev = torch.zeros(3, t, dtype=torch.bool)
    ev[0, ::20] = True  # period 20
    ev[1, ::20] = True  # identical: in phase with unit 0
    ev[2, 10::20] = True  # half a period later: anti-phase
    ph = phases_from_events(ev)
    assert float(ph[0, 25]) == pytest.approx(2 * math.pi * (1 + 5 / 20))
    assert math.isnan(float(ph[2, 5]))  # before the first event
    r_t, r = kuramoto_order(ph[:2])
    assert float(r) == pytest.approx(1.0, abs=1e-12)
    _, r_anti = kuramoto_order(ph[[0, 2]])
    assert float(r_anti) == pytest.approx(0.0, abs=1e-12)
    _, r3 = kuramoto_order(ph)
    assert float(r3) == pytest.approx(1 / 3, abs=1e-12)  # |1 + 1 - 1| / 3


def test_spike_events_and_burst_onsets():
    x = torch.tensor([0.0, 2.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 2.0])
    ev = spike_events(x, 1.0)
    assert torch.nonzero(ev).flatten().tolist() == [1, 3, 8, 10]
    assert torch.nonzero(burst_onsets(ev, 3)).flatten().tolist() == [1, 8]


def test_analytic_phase_of_a_cosine():
    t = torch.arange(1000, dtype=torch.float64)
    w = 2 * math.pi / 50
    ph = analytic_phase(torch.cos(w * t))
    expected = torch.remainder(w * t + math.pi, 2 * math.pi) - math.pi
    d = torch.remainder(ph[100:900] - expected[100:900] + math.pi, 2 * math.pi) - math.pi
    assert d.abs().max() < 1e-6
    _, r = kuramoto_order(torch.stack([ph, analytic_phase(torch.cos(w * t + 0.3))]))
    assert float(r) == pytest.approx(math.cos(0.15), abs=1e-3)


def test_rank_correlation_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, 40).astype(float)  # with ties
    b = a + rng.standard_normal(40)
    expected = stats.spearmanr(a, b)[0]
    assert rank_correlation(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(rank_correlation(torch.ones(5), torch.arange(5.0)))
