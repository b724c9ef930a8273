"""seed_everything: every global RNG and the returned generator are reproducible."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from neuroplast.core import seed_everything


def draw(gen):
    return random.random(), float(np.random.rand()), float(torch.rand(1)), float(torch.rand(1, generator=gen))


def test_same_seed_same_draws_other_seed_other_draws():
    a = draw(seed_everything(123))
    b = draw(seed_everything(123))
    c = draw(seed_everything(124))
    assert a == b
    assert all(x != y for x, y in zip(a, c, strict=True))


def test_generator_matches_a_fresh_seeded_generator_and_flags():
    gen = seed_everything(7)
    assert isinstance(gen, torch.Generator) and gen.initial_seed() == 7
    fresh = torch.Generator().manual_seed(7)
    assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=fresh))
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


def test_bad_seeds():
    with pytest.raises(TypeError, match="int"):
        seed_everything(1.5)
    with pytest.raises(TypeError, match="int"):
        seed_everything(True)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        seed_everything(2**32)
