"""Conformance cases for neuroplast.neurons.astro: AstroLIF (multi/single step, both modes) and
the recurrent layer."""

from __future__ import annotations

import torch
from torch import nn

from neuroplast.neurons.astro import AstroLIF, RecurrentAstroLIF
from neuroplast.testing import ConformanceCase


def _seq_input() -> torch.Tensor:
    return torch.rand(8, 3, 6) * 2.0  # time-first [T, B, N]


def _step_input() -> torch.Tensor:
    return torch.rand(3, 6) * 2.0


def _train_step(m: nn.Module) -> None:
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    out = m(torch.rand(8, 3, m.in_features if isinstance(m, RecurrentAstroLIF) else 6) * 2.0)
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    opt.step()


def _shift_buffers(m: nn.Module) -> None:
    with torch.no_grad():
        for t in list(m.parameters()) + list(m.buffers()):
            t.mul_(0.9).add_(0.01)


CASES = [
    ConformanceCase("astro_lif_input", lambda: AstroLIF(6, 3, beta=0.8, gamma=2.0), input_factory=_seq_input,
                    exercise=_train_step),
    ConformanceCase("astro_lif_threshold_learn_lambda",
                    lambda: AstroLIF(6, 2, beta=0.7, mode="threshold", learn_lambda=True, gamma=0.5),
                    input_factory=_seq_input, exercise=_train_step),
    ConformanceCase("astro_lif_single_step",
                    lambda: AstroLIF(6, 3, step_mode="single", learn_gamma=False),
                    input_factory=_step_input, exercise=_shift_buffers),
    ConformanceCase("recurrent_astro_lif", lambda: RecurrentAstroLIF(4, 6, 3, beta=0.8),
                    input_factory=lambda: torch.rand(8, 3, 4) * 2.0, exercise=_train_step),
    ConformanceCase("recurrent_lif_plain", lambda: RecurrentAstroLIF(4, 6, 3, astro=False, beta=0.8),
                    input_factory=lambda: torch.rand(8, 3, 4) * 2.0, exercise=_train_step),
]
