"""Structural edits on neurons and synapses: recycling, perturbation, pruning, growth."""

from neuroplast.structure.recycle import (  # noqa: F401
    RecycleReport,
    fresh_parameters,
    perturb,
    perturb_factor,
    recycle_dormant,
)
