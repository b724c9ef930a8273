"""A small image generator G for the DGN-AM prior (Nguyen et al. 2016, arXiv:1605.09304).

DGN-AM optimises a code h instead of pixels: h* = argmax_h a_i(C(G(h))) - lambda ||h||^2, with h clipped to
the range seen in training, so that the image G(h) stays on the manifold G learned. The paper's G inverts
AlexNet fc6 and is trained with pixel + feature + adversarial losses; here G is the decoder of an MLP
autoencoder trained with the pixel loss only (binary cross-entropy on images in [0, 1]):

    E: x -> Linear(D, hidden) -> ReLU -> Linear(hidden, d) = h
    G: h -> Linear(d, hidden) -> ReLU -> Linear(hidden, D) -> sigmoid -> reshape (C, H, W)
    min_{E, G} mean_x BCE(G(E(x)), x)

``fit_autoencoder`` also returns the per-dimension code statistics (min, max, mean) over the training set.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Decoder", "Encoder", "Autoencoder", "CodeStats", "fit_autoencoder", "code_stats"]


def _pos_int(v: object, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
    return int(v)


class Encoder(nn.Module):
    """x (B, C, H, W) -> h (B, code_dim)."""

    def __init__(self, shape: Sequence[int], code_dim: int = 16, hidden: int = 256) -> None:
        super().__init__()
        d = math.prod(shape)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, code_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """h (B, code_dim) -> x (B, C, H, W) in [0, 1]."""

    def __init__(self, shape: Sequence[int], code_dim: int = 16, hidden: int = 256) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"shape: expected (C, H, W), got {tuple(shape)!r}")
        self.shape = tuple(int(s) for s in shape)
        self.code_dim = _pos_int(code_dim, "code_dim")
        self.net = nn.Sequential(
            nn.Linear(self.code_dim, _pos_int(hidden, "hidden")), nn.ReLU(),
            nn.Linear(hidden, math.prod(shape)),
        )

    def forward(self, h: Tensor) -> Tensor:
        if h.dim() != 2 or h.shape[1] != self.code_dim:
            raise ValueError(f"h: expected shape (B, {self.code_dim}), got {tuple(h.shape)}")
        return torch.sigmoid(self.net(h)).reshape(h.shape[0], *self.shape)


class Autoencoder(nn.Module):
    """Encoder + Decoder; ``forward`` reconstructs."""

    def __init__(self, shape: Sequence[int], code_dim: int = 16, hidden: int = 256) -> None:
        super().__init__()
        self.encoder = Encoder(shape, code_dim, hidden)
        self.decoder = Decoder(shape, code_dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


@dataclass(frozen=True)
class CodeStats:
    """Per-dimension statistics of the training codes: lo (min), hi (max), mean, std, all (d,)."""

    lo: Tensor
    hi: Tensor
    mean: Tensor
    std: Tensor


@torch.no_grad()
def code_stats(encoder: nn.Module, x: Tensor, batch_size: int = 1000) -> CodeStats:
    """min / max / mean / std (population) of encoder(x) over the samples, per code dimension."""
    was = encoder.training
    encoder.eval()
    try:
        h = torch.cat([encoder(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])  # (N, d)
    finally:
        encoder.train(was)
    return CodeStats(h.min(0).values, h.max(0).values, h.mean(0), h.std(0, correction=0))


def fit_autoencoder(ae: Autoencoder, x: Tensor, *, epochs: int = 20, batch_size: int = 64, lr: float = 1e-3,
                    generator: torch.Generator | None = None) -> list[float]:
    """Train ``ae`` in place by Adam on mean BCE(G(E(x)), x); returns the mean loss of every epoch."""
    if not isinstance(ae, Autoencoder):
        raise TypeError(f"ae: expected an Autoencoder, got {type(ae).__name__}")
    if not isinstance(x, Tensor) or x.dim() != 4 or x.min() < 0 or x.max() > 1:
        raise ValueError("x: expected images (N, C, H, W) with values in [0, 1]")
    epochs, batch_size = _pos_int(epochs, "epochs"), _pos_int(batch_size, "batch_size")
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    losses = []
    ae.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(0, len(x), batch_size):
            xb = x[order[i : i + batch_size]]
            loss = F.binary_cross_entropy(ae(xb), xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        losses.append(total / len(x))
    return losses
