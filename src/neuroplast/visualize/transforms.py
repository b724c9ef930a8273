"""Random differentiable image transforms and image priors for activation maximisation.

Transformation robustness (Nguyen, Yosinski & Clune 2019, arXiv:1904.08939, section 3; Olah et al. 2017):
at each step the image is jittered, scaled and rotated at random before it is scored, so only patterns
that survive small transforms are reinforced. Every transform is one batched affine warp
``grid_sample(x - fill, affine_grid(A)) + fill`` (bilinear, the area outside the image = ``fill``) with a
matrix A drawn per image from the ``generator``; gradients flow to x. Shapes are kept (jitter plays the
role of lucid's pad + jitter + crop).

Output pixel at centred pixel coordinates p = (u, v) samples the input at ``R(t) p / s - d``:
rotation t, scale s, shift d in pixels. Image priors (per image, ``(B,)``):
``l2(x, c) = sum (x - c)^2``;
``total_variation(x, beta) = sum_ij ((x[i+1,j] - x[i,j])^2 + (x[i,j+1] - x[i,j])^2)^(beta/2)``
(Mahendran & Vedaldi 2015, arXiv:1412.0035).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Jitter", "RandomScale", "RandomRotate", "Compose", "affine_warp", "standard_transforms",
           "l2", "total_variation"]


def _check_image(x: object, who: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        got = f"{x.dtype} shaped {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{who}: expected a float tensor shaped (B, C, H, W), got {got}")
    return x


def _real(v: object, name: str, lo: float = -math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < lo:
        raise ValueError(f"{name}: expected a finite number >= {lo}, got {v!r}")
    return float(v)


def affine_warp(x: Tensor, angle: Tensor, scale: Tensor, shift: Tensor, fill: float = 0.0) -> Tensor:
    """Warp each image: output at centred pixel p samples x at ``R(-angle) p / scale - shift``.

    angle (B,) in radians, scale (B,) > 0, shift (B, 2) in pixels (right, down): content moves by +shift,
    grows by ``scale`` and turns by +angle (clockwise on screen, as v points down).
    """
    _check_image(x, "affine_warp: x")
    b, _, h, w = x.shape
    c, s = torch.cos(angle.double()), torch.sin(angle.double())  # (B,)
    # input coords q = R(-t) p / s - d in pixels, converted to the normalised [-1, 1] grid of each axis
    a = torch.zeros(b, 2, 3, dtype=torch.float64)
    sc = scale.double()
    a[:, 0, 0] = c.double() / sc
    a[:, 0, 1] = s.double() / sc * h / w
    a[:, 1, 0] = -s.double() / sc * w / h
    a[:, 1, 1] = c.double() / sc
    a[:, 0, 2] = -2.0 * shift[:, 0].double() / w
    a[:, 1, 2] = -2.0 * shift[:, 1].double() / h
    grid = F.affine_grid(a.to(x.dtype), [b, 1, h, w], align_corners=False).to(x.device)  # (B, H, W, 2)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


class _Random:
    fill: float = 0.0

    def params(self, b: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_image(x, f"{type(self).__name__}: x")
        angle, scale, shift = self.params(x.shape[0], generator)
        return affine_warp(x, angle, scale, shift, self.fill)


class Jitter(_Random):
    """Shift every image by whole pixels (dx, dy), each uniform in {-pixels, ..., pixels}."""

    def __init__(self, pixels: int, fill: float = 0.0) -> None:
        if isinstance(pixels, bool) or not isinstance(pixels, numbers.Integral) or pixels < 0:
            raise ValueError(f"pixels: expected an int >= 0, got {pixels!r}")
        self.pixels, self.fill = int(pixels), _real(fill, "fill")

    def params(self, b: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        d = torch.randint(-self.pixels, self.pixels + 1, (b, 2), generator=generator).double()
        return torch.zeros(b), torch.ones(b), d

    def __repr__(self) -> str:
        return f"Jitter({self.pixels})"


class RandomScale(_Random):
    """Zoom every image by a factor uniform in [lo, hi] about its centre."""

    def __init__(self, lo: float = 0.9, hi: float = 1.1, fill: float = 0.0) -> None:
        self.lo, self.hi = _real(lo, "lo", 1e-6), _real(hi, "hi", 1e-6)
        if self.lo > self.hi:
            raise ValueError(f"lo, hi: expected lo <= hi, got ({lo}, {hi})")
        self.fill = _real(fill, "fill")

    def params(self, b: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        s = self.lo + (self.hi - self.lo) * torch.rand(b, generator=generator, dtype=torch.float64)
        return torch.zeros(b), s, torch.zeros(b, 2)

    def __repr__(self) -> str:
        return f"RandomScale({self.lo}, {self.hi})"


class RandomRotate(_Random):
    """Rotate every image by an angle uniform in [-degrees, degrees] about its centre."""

    def __init__(self, degrees: float = 10.0, fill: float = 0.0) -> None:
        self.degrees, self.fill = _real(degrees, "degrees", 0.0), _real(fill, "fill")

    def params(self, b: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        t = (2 * torch.rand(b, generator=generator, dtype=torch.float64) - 1) * math.radians(self.degrees)
        return t, torch.ones(b), torch.zeros(b, 2)

    def __repr__(self) -> str:
        return f"RandomRotate({self.degrees})"


class Compose:
    """Apply transforms in order; each draws its own random parameters from the shared generator."""

    def __init__(self, transforms: Sequence[object]) -> None:
        items = list(transforms)
        for t in items:
            if not callable(t):
                raise TypeError(f"transforms: expected callables (x, generator) -> x, got {type(t).__name__}")
        self.transforms = items

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


def standard_transforms(size: int, fill: float = 0.0) -> Compose:
    """Lucid's stack (pad 12, jitter 8, scale 0.9-1.1, rotate +-10 deg, jitter 4 on 224 px) for
    ``size``-pixel images: jitter round(8 size / 224) + round(12 size / 224), scale, rotate, jitter
    round(4 size / 224), each at least 1 pixel."""
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size: expected an int >= 1, got {size!r}")
    j1 = max(1, round(20 * size / 224))
    j2 = max(1, round(4 * size / 224))
    return Compose(
        [Jitter(j1, fill), RandomScale(0.9, 1.1, fill), RandomRotate(10.0, fill), Jitter(j2, fill)]
    )


def l2(x: Tensor, center: float = 0.0) -> Tensor:
    """sum over (C, H, W) of (x - center)^2, one value per image: shape (B,)."""
    _check_image(x, "l2: x")
    return ((x - center) ** 2).flatten(1).sum(1)


def total_variation(x: Tensor, beta: float = 1.0) -> Tensor:
    """TV^beta = sum_{c,i,j} (dy^2 + dx^2)^(beta/2) over the (H-1) x (W-1) grid, shape (B,)."""
    _check_image(x, "total_variation: x")
    beta = _real(beta, "beta", 1e-6)
    if x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ValueError(f"total_variation: x: expected H, W >= 2, got shape {tuple(x.shape)}")
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    sq = dy * dy + dx * dx
    if beta == 2.0:
        return sq.flatten(1).sum(1)
    return (sq + 1e-12).pow(beta / 2).flatten(1).sum(1)
