"""Seeding: one call seeds every global RNG and hands back an explicit generator."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device).

    Also sets the deterministic-friendly cuDNN flags (``deterministic=True``, ``benchmark=False``),
    which cost nothing on CPU; it does not call ``torch.use_deterministic_algorithms`` (that makes
    some CUDA ops raise). Returns a new CPU ``torch.Generator`` seeded with ``seed``: pass it
    explicitly to whatever draws random numbers.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed_everything: seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed_everything: seed must be in [0, 2**32) (NumPy's range), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)
