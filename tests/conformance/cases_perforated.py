"""Conformance cases for neuroplast.neurons.perforated: PerforatedBackprop on a Linear MLP and on a
Conv2d net, attached with one frozen dendrite generation (v drawn non-zero, so the dendrites change
the output) and, for the correlation objective, in the middle of a dendrite phase."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from neuroplast.neurons.perforated import PerforatedBackprop
from neuroplast.testing import ConformanceCase


def _mlp() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(OrderedDict(fc1=nn.Linear(6, 5), act=nn.ReLU(), fc2=nn.Linear(5, 3)))


def _cnn() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
        )


def _with_dendrites(sites: list[str], objective: str, phase: str):
    def make(model: nn.Module) -> PerforatedBackprop:
        pb = PerforatedBackprop(model, sites, num_dendrites=2, objective=objective,
                                generator=torch.Generator().manual_seed(2)).attach()
        pb.add_dendrites()
        pb.freeze_dendrites()
        with torch.no_grad():
            g = torch.Generator().manual_seed(3)
            for gens in pb.banks_.values():
                gens[0].v.uniform_(-1, 1, generator=g)  # as if trained: the dendrites now act
        if phase == "dendrite":
            pb.add_dendrites()
        return pb

    return make


def _mlp_input() -> torch.Tensor:
    return torch.randn(7, 6, generator=torch.Generator().manual_seed(4))


def _cnn_input() -> torch.Tensor:
    return torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(5))


def _exercise(x_factory):
    def run(pb: PerforatedBackprop) -> None:
        x = x_factory()
        y = torch.arange(len(x)) % 3
        opt = torch.optim.SGD(pb.parameters(), lr=0.5)
        F.cross_entropy(pb.model(x), y).backward()
        opt.step()
        pb.step(0.5)
        pb.step(0.5)

    return run


CASES = [
    ConformanceCase(
        "perforated_mlp",
        _mlp,
        method_factory=_with_dendrites(["fc1", "fc2"], "correlation", "neuron"),
        input_factory=_mlp_input,
        exercise=_exercise(_mlp_input),
    ),
    ConformanceCase(
        "perforated_mlp_dendrite_phase",
        _mlp,
        method_factory=_with_dendrites(["fc1", "fc2"], "correlation", "dendrite"),
        input_factory=_mlp_input,
        exercise=_exercise(_mlp_input),
    ),
    ConformanceCase(
        "perforated_conv_gradient",
        _cnn,
        method_factory=_with_dendrites(["0", "4"], "gradient", "dendrite"),
        input_factory=_cnn_input,
        exercise=_exercise(_cnn_input),
    ),
]
