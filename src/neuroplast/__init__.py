"""neuroplast: the neuron as a first-class unit of PyTorch networks.

The core names (sites, recording, interventions, the training loop, seeding, state files) are
re-exported here and imported lazily, so ``import neuroplast.neurons`` never pays for more than
it uses.
"""

from neuroplast._lazy import lazy_exports

__version__ = "0.1.0"

_CORE = "neuroplast.core"
__all__ = [
    "Site", "find_sites", "units", "Recorder", "Clamp", "Ablate", "Scale", "Noise", "Schedule", "Patch",
    "SiteMean", "site_output",
    "fit", "evaluate", "seed_everything", "save_state", "load_state",
]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, _CORE))
