"""Conformance cases for neuroplast.core: the four interventions and the Recorder."""

from __future__ import annotations

import torch
from torch import nn

from neuroplast.core import Ablate, Clamp, Noise, Recorder, Scale, Schedule, find_sites
from neuroplast.testing import ConformanceCase


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def mlp_input() -> torch.Tensor:
    return torch.randn(5, 6)


def cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))


def cnn_input() -> torch.Tensor:
    return torch.randn(3, 2, 6, 6)


class LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 5)  # time-first: output [T, B, 5] and a (h, c) tuple
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out)


def lstm_input() -> torch.Tensor:
    return torch.randn(7, 3, 4)


def _stepped(n: int):
    def exercise(obj):
        for _ in range(n):
            obj.step()

    return exercise


def _recorded(x_factory):
    def exercise(rec: Recorder) -> None:
        with rec:
            rec.model(x_factory())

    return exercise


def _clamp_mean(model: nn.Module) -> Clamp:
    stats = {"mean": torch.linspace(-1.0, 1.0, 8)}
    return Clamp(model, "1", mask=lambda s: s["mean"] > 0, value="mean", stats=stats)


CASES = [
    ConformanceCase("clamp", mlp, lambda m: Clamp(m, "1", [0, 3], value=2.5, schedule=Schedule(0, 10)),
                    mlp_input, _stepped(3)),
    ConformanceCase("clamp_mean_callable_mask", mlp, _clamp_mean, mlp_input, _stepped(1)),
    ConformanceCase("clamp_conv_channels", cnn,
                    lambda m: Clamp(m, "2", torch.tensor([1, 0, 1, 0]).bool(), value=torch.arange(4.0)),
                    cnn_input, _stepped(2)),
    ConformanceCase("clamp_lstm_tuple", LSTMNet, lambda m: Clamp(m, "rnn", [1], value=-1.0), lstm_input,
                    _stepped(1)),
    ConformanceCase("ablate", mlp, lambda m: Ablate(m, "1", [1, 2, 5]), mlp_input, _stepped(4)),
    ConformanceCase("scale", cnn, lambda m: Scale(m, "0", [0, 2], factor=torch.tensor([0.5, 1.0, 2.0, 3.0])),
                    cnn_input, _stepped(2)),
    ConformanceCase("noise", mlp, lambda m: Noise(m, "0", [0, 1, 2], std=0.3,
                                                  generator=torch.Generator().manual_seed(7)),
                    mlp_input, _stepped(5)),
    ConformanceCase("recorder_mlp", mlp, lambda m: Recorder(m, find_sites(m, ["0", "1"])), mlp_input,
                    _recorded(mlp_input)),
    ConformanceCase("recorder_cnn_all_stats", cnn,
                    lambda m: Recorder(m, "*", stats=("mean", "var", "mean_abs", "max_abs", "frac_active",
                                                      "min", "max")), cnn_input, _recorded(cnn_input)),
]
