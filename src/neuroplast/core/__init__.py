"""neuroplast.core: sites, recording, interventions, the training loop, seeding and state files.

Only torch, numpy, safetensors and tqdm are imported here; never another neuroplast package.
"""

from neuroplast.core.capture import SiteMean, site_output
from neuroplast.core.intervene import (
    Ablate,
    Clamp,
    Intervention,
    Noise,
    Patch,
    Scale,
    Schedule,
)
from neuroplast.core.loop import FitState, evaluate, fit
from neuroplast.core.record import STATS, Recorder
from neuroplast.core.seed import seed_everything
from neuroplast.core.serialize import load_state, save_state
from neuroplast.core.sites import Site, find_sites, resolve_site, resolve_sites, units

__all__ = [
    "Site", "find_sites", "units", "resolve_site", "resolve_sites",
    "Recorder", "STATS",
    "Intervention", "Clamp", "Ablate", "Scale", "Noise", "Patch", "SiteMean", "site_output", "Schedule",
    "fit", "evaluate", "FitState",
    "seed_everything", "save_state", "load_state",
]
