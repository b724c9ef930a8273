"""Conformance cases for neuroplast.neurons.gating: NeuronGate on a ReLU site of an MLP and on a
Conv2d site (channel axis), hardened gate, and NeuronScale (IA3-style)."""

from __future__ import annotations

import torch
from torch import nn

from neuroplast.neurons.gating import NeuronGate, NeuronScale
from neuroplast.testing import ConformanceCase


def _mlp() -> nn.Module:
    torch.manual_seed(11)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


def _cnn() -> nn.Module:
    torch.manual_seed(12)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))


def _mlp_input() -> torch.Tensor:
    return torch.randn(8, 6, generator=torch.Generator().manual_seed(5))


def _cnn_input() -> torch.Tensor:
    return torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(6))


def _train(input_factory):  # one SGD step on the adapter's parameters (the model stays frozen)
    def exercise(adapter) -> None:
        adapter.attach()
        try:
            opt = torch.optim.SGD(adapter.parameters(), lr=0.5)
            adapter._root(input_factory()).pow(2).sum().backward()  # the whole model, kept by _with_root
            opt.step()
        finally:
            adapter.detach()

    return exercise


def _with_root(factory):
    def build(model: nn.Module):
        adapter = factory(model)
        object.__setattr__(adapter, "_root", model)  # not registered: state_dict stays the adapter's own
        return adapter

    return build


_gate_mlp = _with_root(lambda m: NeuronGate(m, ["1", "3"], temperature=0.2, threshold=0.05))
_gate_cnn = _with_root(lambda m: NeuronGate(m, "0", temperature=0.5, threshold=-0.1))
_gate_hard = _with_root(lambda m: NeuronGate(m, ["0", "2"], temperature=0.1, hard=True))
_scale = _with_root(lambda m: NeuronScale(m, ["1", "3"]))

CASES = [
    ConformanceCase("neuron_gate_mlp", _mlp, _gate_mlp, _mlp_input, exercise=_train(_mlp_input)),
    ConformanceCase("neuron_gate_conv", _cnn, _gate_cnn, _cnn_input, exercise=_train(_cnn_input)),
    # hard gate: no gradient reaches the thresholds, the gains still train
    ConformanceCase("neuron_gate_hard", _mlp, _gate_hard, _mlp_input, exercise=_train(_mlp_input)),
    ConformanceCase("neuron_scale_ia3", _mlp, _scale, _mlp_input, exercise=_train(_mlp_input)),
]
