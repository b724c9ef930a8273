"""Oracles for the 0-1 test and sample entropy (antropy and nolds as reference libraries)."""

import math

import numpy as np
import pytest
import torch

from neuroplast.metrics.chaos import sample_entropy, zero_one_test


def logistic_series(r: float, n: int, x0: float = 0.3, transient: int = 1000) -> torch.Tensor:
    x = x0
    for _ in range(transient):
        x = r * x * (1 - x)
    out = np.empty(n)
    for i in range(n):
        x = r * x * (1 - x)
        out[i] = x
    return torch.tensor(out)


def zero_one_reference(phi: np.ndarray, c: float) -> float:
    """Direct O(N * n_cut) transcription of Gottwald & Melbourne's K_c (modified D_c)."""
    n = len(phi)
    j = np.arange(1, n + 1)
    p = np.cumsum(phi * np.cos(j * c))
    q = np.cumsum(phi * np.sin(j * c))
    ncut = n // 10
    ns = np.arange(1, ncut + 1)
    m = np.array([np.mean((p[k:] - p[:-k]) ** 2 + (q[k:] - q[:-k]) ** 2) for k in ns])
    d = m - phi.mean() ** 2 * (1 - np.cos(ns * c)) / (1 - np.cos(c))
    return float(np.corrcoef(ns, d)[0, 1])


def test_zero_one_matches_direct_formula_for_one_c():
    phi = logistic_series(3.9, 600).numpy()
    c = 1.3
    ours = zero_one_test(torch.tensor(phi), n_c=1, c_range=(c, c))
    assert float(ours) == pytest.approx(zero_one_reference(phi, c), abs=1e-9)


def test_zero_one_logistic_chaotic_and_periodic():
    g = torch.Generator().manual_seed(0)
    x = torch.stack([logistic_series(3.97, 3000), logistic_series(3.55, 3000), logistic_series(3.2, 3000)])
    k = zero_one_test(x, generator=g)
    assert k[0] > 0.9  # chaotic
    assert abs(k[1]) < 0.1  # period 8
    assert abs(k[2]) < 0.1  # period 2


def test_zero_one_quasiperiodic_and_constant():
    t = torch.arange(3000, dtype=torch.float64)
    quasi = torch.sin(t * (math.sqrt(5) - 1)) + 0.5 * torch.sin(t * math.sqrt(2))
    k = zero_one_test(
        torch.stack([quasi, torch.ones(3000, dtype=torch.float64)]),
        generator=torch.Generator().manual_seed(1),
    )
    assert abs(k[0]) < 0.15
    assert math.isnan(k[1])  # a constant series has no defined K


def test_zero_one_bad_input():
    with pytest.raises(ValueError, match="too short"):
        zero_one_test(torch.ones(10))
    assert math.isnan(float(zero_one_test(torch.tensor([float("nan")] + [0.1 * i for i in range(99)]))))


@pytest.mark.parametrize("kind", ["random", "periodic", "logistic"])
def test_sample_entropy_matches_antropy_and_nolds(kind):
    antropy = pytest.importorskip("antropy")
    nolds = pytest.importorskip("nolds")
    rng = np.random.default_rng(0)
    if kind == "random":
        x = rng.random(800)
    elif kind == "periodic":
        x = np.sin(2 * np.pi * np.arange(800) / 37.0) + 0.01 * rng.standard_normal(800)
    else:
        x = logistic_series(3.9, 800).numpy()
    ours_a = float(sample_entropy(torch.tensor(x), m=2, r=0.2, ddof=0))
    assert ours_a == pytest.approx(antropy.sample_entropy(x, order=2), rel=1e-12)
    tol = 0.2 * np.std(x, ddof=1)
    ours_n = float(sample_entropy(torch.tensor(x), m=2, r=tol, relative=False))
    assert ours_n == pytest.approx(nolds.sampen(x, emb_dim=2, tolerance=tol), rel=1e-12)
    ours3 = float(sample_entropy(torch.tensor(x), m=3, r=0.2, ddof=0))
    assert ours3 == pytest.approx(antropy.sample_entropy(x, order=3), rel=1e-12)


def test_sample_entropy_batched_blocked_and_ordering():
    rng = np.random.default_rng(1)
    x = torch.tensor(np.stack([rng.random(500), np.sin(np.arange(500) * 0.3)]))
    full = sample_entropy(x)
    blocked = sample_entropy(x, max_pairs=1000)
    assert torch.equal(full, blocked)
    assert full[0] > 1.5 > full[1]  # noise is more complex than a sine
    periodic = torch.tensor([0.0, 1.0] * 100)
    assert float(sample_entropy(periodic)) == pytest.approx(0.0, abs=1e-12)


def test_sample_entropy_bad_input():
    with pytest.raises(ValueError, match="m must be"):
        sample_entropy(torch.rand(50), m=0)
    with pytest.raises(ValueError, match="too short"):
        sample_entropy(torch.rand(3), m=2)
