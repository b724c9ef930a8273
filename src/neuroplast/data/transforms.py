"""Fixed input transforms for continual-learning task sequences (permuted / rotated MNIST).

``permute(seed)`` makes one fixed pixel permutation (Permuted MNIST, Goodfellow et al. 2013,
arXiv:1312.6211); ``rotate(degrees)`` one fixed rotation (Rotated MNIST, e.g. Lopez-Paz &
Ranzato 2017, arXiv:1706.08840). Both are deterministic callables on batches; torch only.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Permute", "Rotate", "permute", "rotate"]


def _check_int(value: object, argname: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argname} must be an int, got {type(value).__name__}")
    if int(value) < minimum:
        raise ValueError(f"{argname} must be >= {minimum}, got {value}")
    return int(value)


class Permute:
    """A fixed permutation of pixel positions, the same on every call.

    On (B, C, H, W) batches it moves whole pixels (all channels together) among the H*W
    positions: ``out[b, c].flatten()[k] = x[b, c].flatten()[perm[k]]``; on (B, D) batches it
    permutes the D features: ``out[:, k] = x[:, perm[k]]``. ``perm`` is
    ``torch.randperm(num_pixels)`` drawn from a ``torch.Generator`` seeded with ``seed``; with
    ``num_pixels=None`` it is drawn on the first call from the input's size (the same
    permutation as giving that size up front) and later calls must have the same size.
    """

    def __init__(self, seed: int, num_pixels: int | None = None) -> None:
        self.seed = _check_int(seed, "seed", minimum=0)
        self.num_pixels = None if num_pixels is None else _check_int(num_pixels, "num_pixels", 1)
        self._perm: Tensor | None = None
        if self.num_pixels is not None:
            self._perm = self._draw(self.num_pixels)

    def _draw(self, n: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed)
        return torch.randperm(n, generator=g)

    @classmethod
    def from_perm(cls, perm: Tensor) -> Permute:
        """A Permute applying a given permutation (validated to be one)."""
        if not isinstance(perm, Tensor) or perm.dim() != 1 or perm.dtype != torch.int64:
            detail = f" {perm.dtype} shaped {tuple(perm.shape)}" if isinstance(perm, Tensor) else ""
            raise TypeError(f"perm must be a 1-D int64 tensor, got {type(perm).__name__}{detail}")
        n = perm.numel()
        if n == 0 or not torch.equal(torch.sort(perm.cpu()).values, torch.arange(n)):
            raise ValueError("perm must be a permutation of 0..n-1")
        obj = cls.__new__(cls)
        obj.seed = None
        obj.num_pixels = n
        obj._perm = perm.detach().cpu().clone()
        return obj

    @property
    def perm(self) -> Tensor:
        """The permutation, a LongTensor of length num_pixels."""
        if self._perm is None:
            raise RuntimeError("Permute.perm is not known yet: give num_pixels to permute(seed, num_pixels) "
                               "or call the transform once on a batch")
        return self._perm

    def inverse(self) -> Permute:
        """The inverse permutation (``argsort(perm)``), so ``p.inverse()(p(x)) == x``."""
        return Permute.from_perm(torch.argsort(self.perm))

    def __call__(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"Permute expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 4:
            b, c, h, w = x.shape
            n = h * w
        elif x.dim() == 2:
            n = x.shape[1]
        else:
            raise ValueError(f"Permute expects a (B, C, H, W) or (B, D) tensor, got shape {tuple(x.shape)}")
        if self._perm is None:
            self.num_pixels = n
            self._perm = self._draw(n)
        elif n != self._perm.numel():
            raise ValueError(f"Permute was made for {self._perm.numel()} pixels, got an input with {n} "
                             f"(shape {tuple(x.shape)})")
        perm = self._perm.to(x.device)
        if x.dim() == 2:
            return x[:, perm]
        return x.reshape(b, c, n)[:, :, perm].reshape(b, c, h, w)

    def __repr__(self) -> str:
        return f"Permute(seed={self.seed}, num_pixels={self.num_pixels})"


class Rotate:
    """Rotate (B, C, H, W) batches counter-clockwise by a fixed angle about the image centre.

    Output pixel at centred pixel coordinates (u, v) (u right, v down) samples the input at
    ``(u cos t - v sin t, u sin t + v cos t)`` with bilinear interpolation and zero padding
    (``affine_grid`` / ``grid_sample``, ``align_corners=False``); the matrix is corrected for
    the aspect ratio, so non-square images rotate without shearing. It matches
    ``scipy.ndimage.rotate(img, degrees, reshape=False, order=1, mode="grid-constant")`` and
    torchvision's ``rotate(img, degrees, InterpolationMode.BILINEAR)`` (fill=None), and
    ``Rotate(90)`` equals ``torch.rot90(x, 1, dims=(-2, -1))`` on square images.
    """

    def __init__(self, degrees: float) -> None:
        if isinstance(degrees, bool) or not isinstance(degrees, numbers.Real):
            raise TypeError(f"degrees must be a real number, got {type(degrees).__name__}")
        if not math.isfinite(float(degrees)):
            raise ValueError(f"degrees must be finite, got {degrees}")
        self.degrees = float(degrees)
        self._grids: dict[tuple, Tensor] = {}

    def _grid(self, h: int, w: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        key = (h, w, dtype, device)
        if key not in self._grids:
            t = math.radians(self.degrees)
            c, s = math.cos(t), math.sin(t)
            # normalised coords x = u / (W/2), y = v / (H/2)  =>
            theta = torch.tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]], dtype=torch.float64)
            grid = F.affine_grid(theta[None], [1, 1, h, w], align_corners=False)  # (1, H, W, 2)
            self._grids[key] = grid.to(dtype=dtype, device=device)
        return self._grids[key]

    def __call__(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"Rotate expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(f"Rotate expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"Rotate expects a floating-point tensor, got {x.dtype}")
        if self.degrees % 360.0 == 0.0:
            return x.clone()  # exact identity (the sampling grid would be off by ~1e-7)
        b, _, h, w = x.shape
        grid = self._grid(h, w, x.dtype, x.device).expand(b, h, w, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def __repr__(self) -> str:
        return f"Rotate(degrees={self.degrees})"


def permute(seed: int, num_pixels: int | None = None) -> Permute:
    """A fixed pixel permutation drawn from ``seed`` (see ``Permute``)."""
    return Permute(seed, num_pixels)


def rotate(degrees: float) -> Rotate:
    """A fixed counter-clockwise rotation by ``degrees`` (see ``Rotate``)."""
    return Rotate(degrees)
