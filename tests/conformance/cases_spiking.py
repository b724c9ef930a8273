"""Conformance cases for neuroplast.neurons.spiking: LIF / IF modules (single and multi step)."""

from __future__ import annotations

import torch
from torch import nn

from neuroplast.neurons.spiking import IF, LIF
from neuroplast.testing import ConformanceCase


def _seq_input() -> torch.Tensor:
    return torch.randn(6, 3, 5) + 0.5  # time-first [T, B, N]


def _step_input() -> torch.Tensor:
    return torch.randn(3, 5) + 0.5


def _shift_buffers(m: nn.Module) -> None:
    with torch.no_grad():
        for t in list(m.parameters()) + list(m.buffers()):
            t.add_(0.1 * torch.arange(t.numel(), dtype=t.dtype).view(t.shape) + 0.05)


def _train_step(m: nn.Module) -> None:
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    m(_seq_input()).sum().backward()
    opt.step()


def _learnable() -> LIF:
    return LIF(tau=3.0, learn_tau=True, learn_threshold=True, shape=5, mpr=True, surrogate="triangle")


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 4), LIF(beta=0.8, reset="zero"), nn.Linear(4, 2), IF())


CASES = [
    ConformanceCase("lif_multistep", lambda: LIF(beta=0.7), input_factory=_seq_input,
                    exercise=_shift_buffers),
    ConformanceCase("lif_reference_loop", lambda: LIF(beta=0.7, fused=False), input_factory=_seq_input,
                    exercise=_shift_buffers),
    ConformanceCase("lif_single_step", lambda: LIF(tau=2.0, step_mode="single", shape=5),
                    input_factory=_step_input, exercise=_shift_buffers),
    ConformanceCase("if_multistep", lambda: IF(threshold=0.8, reset="zero"), input_factory=_seq_input,
                    exercise=_shift_buffers),
    ConformanceCase("lif_learnable_mpr", _learnable, input_factory=_seq_input, exercise=_train_step),
    ConformanceCase("spiking_mlp", _net, input_factory=_seq_input, exercise=_train_step),
]
