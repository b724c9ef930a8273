"""Image parameterisations for activation maximisation: pixels, a scaled Fourier basis, a generator code.

Each parameterisation is an ``nn.Module`` holding the optimised tensor; calling it renders a batch of
images ``(B, C, H, W)`` in [0, 1]. Survey: Nguyen, Yosinski & Clune 2019 (arXiv:1904.08939), section 3
("image parameterisations"); Fourier basis as in Olah et al. 2017 (Distill, "Feature Visualization").

- ``PixelImage``:    x = sigmoid(p),  p ~ N(0, sd^2) per pixel.
- ``FourierImage``:  x = sigmoid(F^-1[s(f) * z] / 4),  s(f) = 1 / max(|f|, 1/max(H, W))^decay,
  z the complex half-spectrum (``rfft2`` layout, ortho norm), z ~ N(0, sd^2) per real/imag part.
  Low frequencies are amplified, so Adam's per-parameter steps move smooth patterns first.
  (Grey images only here: no colour decorrelation.)
- ``CodeImage``:     x = G(h), the latent code h of a trained decoder G is optimised (DGN-AM,
  Nguyen et al. 2016, arXiv:1605.09304); ``project()`` clips h into the box [lo, hi] seen in training.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Parameterization", "PixelImage", "FourierImage", "CodeImage", "fourier_scale"]


def _check_shape(shape: object) -> tuple[int, int, int]:
    if (
        not isinstance(shape, Sequence)
        or len(shape) != 3
        or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in shape)
    ):
        raise ValueError(f"shape: expected (C, H, W) with positive ints, got {shape!r}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _check_batch(batch: object) -> int:
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 1:
        raise ValueError(f"batch: expected an int >= 1, got {batch!r}")
    return int(batch)


def _check_sd(sd: object) -> float:
    if isinstance(sd, bool) or not isinstance(sd, numbers.Real) or not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd: expected a finite float >= 0, got {sd!r}")
    return float(sd)


class Parameterization(nn.Module):
    """Base class: ``forward()`` renders ``(batch, C, H, W)`` images; ``project()`` runs after each step."""

    batch: int

    def project(self) -> None:
        """Constrain the parameters after an optimiser step (default: nothing)."""

    def penalty(self) -> Tensor:
        """Per-image penalty on the parameters themselves, ``(batch,)`` (default: zeros)."""
        p = next(self.parameters())
        return p.new_zeros(self.batch)


class PixelImage(Parameterization):
    """x = sigmoid(p), p of shape (batch, C, H, W) drawn N(0, sd^2) from ``generator``."""

    def __init__(self, batch: int, shape: Sequence[int], sd: float = 0.01,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.batch = _check_batch(batch)
        c, h, w = _check_shape(shape)
        self.shape = (c, h, w)
        self.logits = nn.Parameter(torch.randn(self.batch, c, h, w, generator=generator) * _check_sd(sd))

    def forward(self) -> Tensor:
        return torch.sigmoid(self.logits)  # (B, C, H, W)


def fourier_scale(h: int, w: int, decay: float = 1.0) -> Tensor:
    """s(f) = 1 / max(|f|, 1/max(h, w))^decay on the ``rfft2`` grid, shape (h, w // 2 + 1).

    |f| = sqrt(fy^2 + fx^2) in cycles per pixel (``torch.fft.fftfreq`` / ``rfftfreq``).
    """
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    f = torch.sqrt(fx * fx + fy * fy)
    return (1.0 / torch.clamp(f, min=1.0 / max(h, w)) ** decay).float()


class FourierImage(Parameterization):
    """x = sigmoid(irfft2(s(f) * z, norm="ortho") / 4); z complex (batch, C, H, W//2+1)."""

    def __init__(self, batch: int, shape: Sequence[int], sd: float = 0.01, decay: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.batch = _check_batch(batch)
        c, h, w = _check_shape(shape)
        if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not math.isfinite(decay):
            raise ValueError(f"decay: expected a finite float, got {decay!r}")
        self.shape, self.decay = (c, h, w), float(decay)
        self.spectrum = nn.Parameter(
            torch.randn(self.batch, c, h, w // 2 + 1, 2, generator=generator) * _check_sd(sd)
        )
        self.register_buffer("scale", fourier_scale(h, w, self.decay), persistent=False)

    def forward(self) -> Tensor:
        z = torch.view_as_complex(self.spectrum) * self.scale  # (B, C, H, W//2+1)
        img = torch.fft.irfft2(z, s=self.shape[1:], norm="ortho")  # (B, C, H, W)
        return torch.sigmoid(img / 4.0)


class CodeImage(Parameterization):
    """x = G(h): the code h (batch, d) of a decoder G is optimised; ``project`` clips h to [lo, hi].

    ``penalty()`` is ||h||^2 per image (DGN-AM: h* = argmax_h a_i(G(h)) - lambda ||h||^2). ``init``:
    a (d,) tensor (broadcast, e.g. the mean training code) or a (batch, d) tensor; ``sd`` adds
    N(0, sd^2) noise from ``generator``. The decoder is used as is; its parameters are not optimised.
    """

    def __init__(self, decoder: nn.Module, init: Tensor, batch: int, lo: Tensor | None = None,
                 hi: Tensor | None = None, sd: float = 0.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(decoder, nn.Module):
            raise TypeError(f"decoder: expected an nn.Module, got {type(decoder).__name__}")
        self.batch = _check_batch(batch)
        if not isinstance(init, Tensor) or init.dim() not in (1, 2) or not init.is_floating_point():
            raise ValueError(f"init: expected a float tensor shaped (d,) or (batch, d), got {init!r:.80}")
        d = init.shape[-1]
        if init.dim() == 2 and init.shape[0] != self.batch:
            raise ValueError(f"init: expected {self.batch} rows (batch), got shape {tuple(init.shape)}")
        for name, bound in (("lo", lo), ("hi", hi)):
            if bound is not None and (not isinstance(bound, Tensor) or bound.shape not in ((d,), ())):
                raise ValueError(f"{name}: expected a tensor shaped ({d},) or a scalar tensor, "
                                 f"got {bound!r:.80}")
        if lo is not None and hi is not None and bool((lo > hi).any()):
            raise ValueError("lo, hi: expected lo <= hi in every dimension")
        self.decoder = [decoder]  # a list: not registered, so parameters() holds the code only
        h0 = init.detach().to(torch.float32).expand(self.batch, d).clone()
        sd = _check_sd(sd)
        if sd > 0:
            h0 = h0 + sd * torch.randn(self.batch, d, generator=generator)
        self.register_buffer("lo", None if lo is None else lo.detach().float().clone())
        self.register_buffer("hi", None if hi is None else hi.detach().float().clone())
        self.code = nn.Parameter(h0)
        self.project()

    def forward(self) -> Tensor:
        return self.decoder[0](self.code)

    @torch.no_grad()
    def project(self) -> None:
        if self.lo is not None or self.hi is not None:
            self.code.copy_(torch.clamp(self.code, min=self.lo, max=self.hi))

    def penalty(self) -> Tensor:
        return (self.code * self.code).sum(1)
