"""Pure functions of recorded statistics and trajectories: dormancy, chaos, synchrony, continual learning."""

from neuroplast.metrics.dormant import dormant_mask, dormant_ratio, dormant_scores  # noqa: F401
