"""Conformance cases for core Patch (activation patching from a source model, the model itself, a
cached tensor or a callable; a per-sample mask that picks positions), Clamp with a full per-head value,
and SiteMean."""

from __future__ import annotations

import torch
from torch import nn

from neuroplast.core import Clamp, Patch, Schedule, Site, SiteMean
from neuroplast.testing import ConformanceCase


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def mlp_input() -> torch.Tensor:
    return torch.randn(5, 6)


class Heads(nn.Module):
    """x (B, T, 6) -> per-head values (B, T, 2, 3) at the identity site "heads" (head axis 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, 6)
        self.heads = nn.Identity()
        self.out = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.heads(self.proj(x).unflatten(-1, (2, 3))).flatten(-2))


def heads_input() -> torch.Tensor:
    return torch.randn(4, 5, 6)


def _dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def _patch_other(model: nn.Module) -> Patch:
    source = mlp().to(_dtype(model)).eval()  # drawn from the seeded global RNG, in the model's dtype
    return Patch(model, "1", [0, 5], source=source, schedule=Schedule(0, 10))


def _patch_positions(model: nn.Module) -> Patch:
    where = torch.zeros(5, 2, 1, dtype=torch.bool)  # (T, heads, 1): head 1 at positions 0 and 4
    where[[0, 4], 1] = True
    source = Heads().to(_dtype(model)).eval()
    return Patch(model, Site("heads", model.heads, 2), where, source=source)


def _stepped(n: int):
    def exercise(obj):
        for _ in range(n):
            obj.step()

    return exercise


def _site_mean(model: nn.Module) -> SiteMean:
    return SiteMean(model, Site("heads", model.heads, 2), dims=(0, 1))


def _site_mean_exercise(sm: SiteMean) -> None:
    with sm, torch.no_grad():
        sm.model(heads_input().to(_dtype(sm.model)))


CASES = [
    ConformanceCase("patch_source_model", mlp, _patch_other, mlp_input, _stepped(3)),
    ConformanceCase("patch_self", mlp, lambda m: Patch(m, "1", [1, 2], source=m), mlp_input, _stepped(1)),
    ConformanceCase("patch_cached_tensor", mlp, lambda m: Patch(m, "1", [3], source=torch.ones(1, 8)),
                    mlp_input, _stepped(2)),
    ConformanceCase("patch_callable_batch_mean", mlp,
                    lambda m: Patch(m, "0", None, source=lambda a: a.mean(0, keepdim=True)), mlp_input,
                    _stepped(1)),
    ConformanceCase("clamp_full_shape_per_head", Heads,
                    lambda m: Clamp(m, Site("heads", m.heads, 2), [1], value=torch.arange(6.0).reshape(2, 3)),
                    heads_input, _stepped(2)),
    ConformanceCase("patch_positions_per_sample_mask", Heads, _patch_positions, heads_input, _stepped(1)),
    ConformanceCase("site_mean", Heads, _site_mean, heads_input, _site_mean_exercise),
]
