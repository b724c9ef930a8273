"""Spike encoders: turn a static input into a time-first sequence ``[T, B, ...]``.

- :func:`poisson` (rate coding): ``o[t] ~ Bernoulli(clamp(gain * x, 0, 1))`` independently per
  step, so the spike count over T steps is Binomial(T, p) with mean ``T * p``
  (Bernoulli approximation of a Poisson process with rate p per step).
- :func:`direct` (direct / current coding): the analog input repeated at every step; the first
  spiking layer acts as the encoder (Wu et al. 2019, arXiv:1809.05793; used by InfLoR-SNN,
  arXiv:2307.04356).

Randomness comes only from the ``generator`` argument.
"""

from __future__ import annotations

import torch

__all__ = ["poisson", "direct"]


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected a positive int (number of time steps T), got {steps!r}")
    return steps


def poisson(
    x: torch.Tensor, steps: int, *, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Rate-coded spikes ``[steps, *x.shape]`` with firing probability ``clamp(gain * x, 0, 1)``
    per step. ``x`` is usually in [0, 1] (pixel intensities)."""
    _check_steps(steps)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    p = (x * gain).clamp(0.0, 1.0)
    u = torch.rand((steps, *x.shape), generator=generator, dtype=x.dtype, device=x.device)
    return (u < p).to(x.dtype)


def direct(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Direct coding: ``x`` repeated over ``steps`` time steps, ``[steps, *x.shape]`` (an
    expanded view, no copy; call ``.contiguous()`` before writing into it)."""
    _check_steps(steps)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    return x.unsqueeze(0).expand(steps, *x.shape)
