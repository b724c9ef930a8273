"""Membrane potential rectifier (MPR) of InfLoR-SNN (Guo et al., ECCV 2022, arXiv:2307.04356)::

    phi(u) = 1 - (1 - u)^(1/3)                          u < 0     (variant "code", default)
             -(-u)^(1/3)                                u < 0     (variant "cube_root")
             tanh(3 (u - 1/2)) / (2 tanh(3/2)) + 1/2    0 <= u <= 1
             u^(1/3)                                    u > 1

The LIF neurons of :mod:`neuroplast.neurons.spiking` fire on ``phi(h) > V_th`` when asked; their
module docstring says where each branch comes from.
"""

from __future__ import annotations

import math

import torch

__all__ = ["MPR_VARIANTS", "mpr", "mpr_grad", "mpr_inverse"]

MPR_VARIANTS = ("code", "cube_root")
_TANH_1_5 = math.tanh(1.5)


def mpr(u: torch.Tensor, variant: str = "code") -> torch.Tensor:
    """Membrane potential rectifier phi(u) of InfLoR-SNN (arXiv:2307.04356); see the module
    docstring for both variants. Continuous, increasing, phi(0)=0, phi(1/2)=1/2, phi(1)=1."""
    if variant not in MPR_VARIANTS:
        raise ValueError(f"variant: expected one of {MPR_VARIANTS}, got {variant!r}")
    one = torch.ones((), dtype=u.dtype, device=u.device)
    upper = torch.where(u > 1, u, one).pow(1.0 / 3.0)
    middle = torch.tanh(3.0 * (u.clamp(0.0, 1.0) - 0.5)) / (2.0 * _TANH_1_5) + 0.5
    if variant == "code":
        lower = 1.0 - (1.0 - u.clamp(max=0.0)).pow(1.0 / 3.0)
    else:
        lower = -torch.where(u < 0, -u, one).pow(1.0 / 3.0)
    return torch.where(u > 1, upper, torch.where(u < 0, lower, middle))


def mpr_grad(u: torch.Tensor, variant: str = "code") -> torch.Tensor:
    """d phi / du, with the branch choice of :func:`mpr` (0 <= u <= 1 is the middle branch)."""
    if variant not in MPR_VARIANTS:
        raise ValueError(f"variant: expected one of {MPR_VARIANTS}, got {variant!r}")
    one = torch.ones((), dtype=u.dtype, device=u.device)
    upper = torch.where(u > 1, u, one).pow(-2.0 / 3.0) / 3.0
    th = torch.tanh(3.0 * (u.clamp(0.0, 1.0) - 0.5))
    middle = (1.0 - th * th) * (3.0 / (2.0 * _TANH_1_5))
    if variant == "code":
        lower = (1.0 - u.clamp(max=0.0)).pow(-2.0 / 3.0) / 3.0
    else:
        lower = torch.where(u < 0, -u, one).pow(-2.0 / 3.0) / 3.0
    return torch.where(u > 1, upper, torch.where(u < 0, lower, middle))


def mpr_inverse(y: torch.Tensor, variant: str) -> torch.Tensor:
    """phi^{-1}(y): phi is strictly increasing, so phi(u) > y  <=>  u > phi^{-1}(y)."""
    upper = y.pow(3)
    inner = ((y.clamp(0.0, 1.0) - 0.5) * (2.0 * _TANH_1_5)).clamp(-1.0 + 1e-12, 1.0 - 1e-12)
    middle = 0.5 + torch.atanh(inner) / 3.0
    lower = 1.0 - (1.0 - y).pow(3) if variant == "code" else -((-y).pow(3))
    return torch.where(y > 1, upper, torch.where(y < 0, lower, middle))
