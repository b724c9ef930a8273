"""neuroplast: the neuron as a first-class unit of PyTorch networks.

The core names (sites, recording, interventions, the training loop, seeding, state files) are
re-exported here and imported lazily, so ``import neuroplast.neurons`` never pays for more than
it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_CORE_NAMES = (
    "Site", "find_sites", "units", "Recorder", "Clamp", "Ablate", "Scale", "Noise", "Schedule",
    "fit", "evaluate", "seed_everything", "save_state", "load_state",
)

__all__ = list(_CORE_NAMES) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _CORE_NAMES:
        return getattr(importlib.import_module("neuroplast.core"), name)
    raise AttributeError(f"module 'neuroplast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
