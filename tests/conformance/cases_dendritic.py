"""Conformance cases for neuroplast.neurons.dendritic: DendriticLayer (dense and with a fixed weight
mask) and KWinners (duty cycles in buffers)."""

from __future__ import annotations

import torch
from torch import nn

from neuroplast.neurons.dendritic import DendriticLayer, KWinners
from neuroplast.testing import ConformanceCase


def _layer_input() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(5, 6, generator=g), torch.randn(5, 4, generator=g)


def _train_layer(m: nn.Module) -> None:
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    m(*_layer_input()).pow(2).sum().backward()
    opt.step()


def _train_kwinners(m: nn.Module) -> None:
    m.train()
    m(torch.randn(7, 10, generator=torch.Generator().manual_seed(4)))
    m.update_boost_strength()


CASES = [
    ConformanceCase(
        "dendritic_layer",
        lambda: DendriticLayer(6, 3, num_segments=2, context_dim=4),
        input_factory=_layer_input,
        exercise=_train_layer,
    ),
    ConformanceCase(
        "dendritic_layer_sparse",
        lambda: DendriticLayer(6, 3, 3, 4, weight_sparsity=0.5, generator=torch.Generator().manual_seed(0)),
        input_factory=_layer_input,
        exercise=_train_layer,
    ),
    ConformanceCase(
        "kwinners",
        lambda: KWinners(10, k=3, duty_cycle_period=20),
        input_factory=lambda: torch.randn(6, 10, generator=torch.Generator().manual_seed(5)),
        exercise=_train_kwinners,
    ),
]
