"""Conformance cases for the dormant-neuron remedies (neuroplast.structure.recycle).

``recycle_dormant`` and ``perturb`` are one-shot edits, not attachable methods: the edit is permanent
(like ``torch.nn.utils.prune.remove``) and they hold no state. So the cases wrap each edit in an
object whose ``remove()`` is a no-op, opt out of the attach/detach and state_dict checks, and run the
determinism check (the global RNG path: ``generator=None`` under ``seed_everything``) and the dtype
check (a float64 model stays float64 after re-initialisation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from neuroplast.core import Recorder, find_sites
from neuroplast.metrics import dormant_mask
from neuroplast.structure import perturb, recycle_dormant
from neuroplast.testing import ConformanceCase

_EDIT_ONLY = ("attach_detach", "state_dict")


class _Edit:
    """A permanent edit already applied to the model; ``remove()`` keeps it (nothing to undo)."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def remove(self) -> None:
        return None


def _mlp() -> nn.Module:
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[0].bias[:3] = -10.0  # three ReLUs of the first layer are dead by construction
    return model


def _cnn() -> nn.Module:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 3)
    )
    with torch.no_grad():
        model[0].bias[:2] = -10.0
    return model


def _recycle_dead(model: nn.Module, site: str, probe: torch.Tensor) -> _Edit:
    with Recorder(model, find_sites(model, site), stats=("count", "mean_abs")) as rec:
        with torch.no_grad():
            model(probe.to(next(model.parameters()).dtype))
    mask = dormant_mask(rec.stats[site])
    report = recycle_dormant(model, site, mask)  # generator=None: the global RNG
    assert report.recycled >= 2, report
    return _Edit(report)


CASES = [
    ConformanceCase(
        "recycle_dormant_mlp",
        _mlp,
        method_factory=lambda m: _recycle_dead(m, "1", torch.rand(16, 6)),
        input_factory=lambda: torch.rand(4, 6),
        skip=_EDIT_ONLY,
    ),
    ConformanceCase(
        "recycle_dormant_cnn",
        _cnn,
        method_factory=lambda m: _recycle_dead(m, "1", torch.rand(4, 1, 8, 8)),
        input_factory=lambda: torch.rand(2, 1, 8, 8),
        skip=_EDIT_ONLY,
    ),
    ConformanceCase(
        "perturb_drm",
        _mlp,
        method_factory=lambda m: _Edit(perturb(m, 0.4)),
        input_factory=lambda: torch.rand(4, 6),
        skip=_EDIT_ONLY,
    ),
]
