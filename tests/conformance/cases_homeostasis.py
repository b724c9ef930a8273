"""Conformance cases for the learning-rate regulators of neuroplast.plasticity.homeostasis
(arXiv:2205.08645): state_dict round trips (also through save_state files) after real decisions.

The regulators attach nothing to the model (they drive an optimizer's param_group lr), so the
attach/detach check does not apply; they have no forward, so determinism and dtype are checked on a
regulated training loop in tests/plasticity/test_homeostasis.py instead.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

from neuroplast.plasticity.homeostasis import HomeostaticRegulator, RandomRegulator, threshold_effects
from neuroplast.testing import ConformanceCase

_NOT_APPLICABLE = ("attach_detach", "determinism", "dtype")
_MODEL_OF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # regulator -> the model it trains


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ELU(), nn.Linear(6, 10))


def _homeostatic(model: nn.Module) -> HomeostaticRegulator:
    reg = HomeostaticRegulator(torch.optim.SGD(model.parameters(), lr=0.5), threshold_effects(10, 5))
    _MODEL_OF[reg] = model
    return reg


def _random(model: nn.Module) -> RandomRegulator:
    return RandomRegulator(torch.optim.Adam(model.parameters(), lr=0.01), threshold_effects(10, 5), seed=7)


def _exercise_homeostatic(reg: HomeostaticRegulator) -> None:
    model = _MODEL_OF[reg]
    g = torch.Generator().manual_seed(1)
    for _ in range(12):
        x, y = torch.randn(10, 4, generator=g), torch.randint(0, 10, (10,), generator=g)
        logits = model(x)
        reg.optimizer.zero_grad()
        nn.functional.cross_entropy(logits, y).backward()
        reg.regulate(model, logits[0].argmax(), y[0], torch.randn(20, 4, generator=g),
                     torch.randint(0, 10, (20,), generator=g))
        reg.optimizer.step()
    if reg.decisions_ == 0:
        raise AssertionError("exercise made no decision")
    if reg.taken_ == 0:  # make sure the saved eta differs from a fresh regulator's
        reg.take(9)


def _exercise_random(reg: RandomRegulator) -> None:
    for label in range(10):
        reg.regulate(None, None, label)


CASES = [
    ConformanceCase("homeostatic_regulator", _model, _homeostatic, exercise=_exercise_homeostatic,
                    skip=_NOT_APPLICABLE),
    ConformanceCase("random_regulator", _model, _random, exercise=_exercise_random, skip=_NOT_APPLICABLE),
]
