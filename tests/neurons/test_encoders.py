"""Spike encoders: rates (binomial oracle), determinism with a generator, layout, bad input."""

from __future__ import annotations

import pytest
import torch

from neuroplast.neurons.encoders import direct, poisson


def test_poisson_rate_matches_probability() -> None:
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0, 1.7, -0.3])
    T = 20_000
    spikes = poisson(p, T, generator=torch.Generator().manual_seed(0))
    assert spikes.shape == (T, 7)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    rate = spikes.mean(0)
    want = p.clamp(0, 1)
    se = (want * (1 - want) / T).sqrt()
    assert torch.all((rate - want).abs() <= 5 * se + 1e-12)


def test_poisson_gain_and_generator_determinism() -> None:
    x = torch.rand(4, 3, generator=torch.Generator().manual_seed(1))
    a = poisson(x, 50, gain=0.5, generator=torch.Generator().manual_seed(7))
    b = poisson(x, 50, gain=0.5, generator=torch.Generator().manual_seed(7))
    c = poisson(x, 50, gain=0.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (50, 4, 3) and a.dtype == x.dtype


def test_direct_repeats_input_time_first() -> None:
    x = torch.randn(2, 5)
    d = direct(x, 3)
    assert d.shape == (3, 2, 5)
    for t in range(3):
        assert torch.equal(d[t], x)


@pytest.mark.parametrize("steps", [0, -1, 2.5, True])
def test_bad_steps(steps: object) -> None:
    with pytest.raises(ValueError, match="steps: expected a positive int"):
        poisson(torch.rand(3), steps)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps"):
        direct(torch.rand(3), steps)  # type: ignore[arg-type]


def test_poisson_rejects_integer_input() -> None:
    with pytest.raises(TypeError, match="x: expected a floating-point tensor"):
        poisson(torch.ones(3, dtype=torch.int64), 4)
