"""Small reference networks for continual-learning studies, initialised from an explicit generator.

``mlp``: the MLP of the GPM / HLOP permuted-MNIST protocol (``Flatten -> [Linear -> ReLU] x depth
-> Linear``, 100 units, no biases in GPM). ``SpikingMLP``: the same layers with LIF neurons
(``neuroplast.neurons.spiking.LIF``) instead of ReLUs, time-first ``[T, B, N]`` inside, the
image presented as a constant input current at every step and the class read out as the mean
output over the T steps (rate coding). Module names are ``"1", "3", ...`` for the Linear layers
and ``"2", "4", ...`` for the activations, in both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["mlp", "SpikingMLP", "linear_names", "activation_names"]


def _init_linear(layer: nn.Linear, generator: torch.Generator | None) -> None:
    """PyTorch's default Linear init (kaiming-uniform, a = sqrt(5)), drawn from ``generator``."""
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        if layer.bias is not None:
            layer.bias.uniform_(-bound, bound, generator=generator)


def _linears(
    n_in: int, hidden: Sequence[int], n_out: int, bias: bool, generator: torch.Generator | None
) -> list[nn.Linear]:
    sizes = [n_in, *hidden, n_out]
    layers = [nn.Linear(a, b, bias=bias) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    for layer in layers:
        _init_linear(layer, generator)
    return layers


def mlp(
    n_in: int, hidden: Sequence[int], n_out: int, bias: bool = False, generator: torch.Generator | None = None
) -> nn.Sequential:
    """``Flatten, Linear, ReLU, ..., Linear`` with weights drawn from ``generator``."""
    layers = _linears(n_in, hidden, n_out, bias, generator)
    mods: list[nn.Module] = [nn.Flatten()]
    for layer in layers[:-1]:
        mods += [layer, nn.ReLU()]
    mods.append(layers[-1])
    return nn.Sequential(*mods)


def linear_names(depth: int) -> list[str]:
    """Names of the Linear layers of ``mlp`` / ``SpikingMLP`` with ``depth`` hidden layers."""
    return [str(1 + 2 * i) for i in range(depth + 1)]


def activation_names(depth: int) -> list[str]:
    """Names of the hidden activations (ReLU / LIF) of ``mlp`` / ``SpikingMLP``."""
    return [str(2 + 2 * i) for i in range(depth)]


class SpikingMLP(nn.Sequential):
    """``Flatten, Linear, LIF, ..., Linear`` run for ``T`` steps on a constant input; rate read-out.

    ``forward(x)``: x (B, ...) -> logits (B, n_out) = mean over t of the last Linear's output.
    The Linear layers see time-first inputs ``[T, B, N]`` (HLOP: use ``time_dim=0``).
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        T: int = 4,
        tau: float = 2.0,
        threshold: float = 0.5,
        bias: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        from neuroplast.neurons.spiking import LIF

        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T: expected a positive int (time steps), got {T!r}")
        layers = _linears(n_in, hidden, n_out, bias, generator)
        mods: list[nn.Module] = [nn.Flatten()]
        for layer in layers[:-1]:
            mods += [layer, LIF(tau=tau, threshold=threshold)]
        mods.append(layers[-1])
        super().__init__(*mods)
        self.T = T

    def forward(self, x: Tensor) -> Tensor:
        h = self[0](x)  # (B, N)
        h = h.unsqueeze(0).expand(self.T, *h.shape)  # (T, B, N): constant input current
        for module in list(self)[1:]:
            h = module(h)
        return h.mean(0)
