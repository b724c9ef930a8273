"""Pure functions of recorded statistics and trajectories: dormancy, chaos, synchrony, continual learning."""

from neuroplast._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["dormant_ratio", "dormant_mask", "dormant_scores"], "neuroplast.metrics.dormant"),
    **dict.fromkeys(["zero_one_test", "sample_entropy"], "neuroplast.metrics.chaos"),
    **dict.fromkeys(["kuramoto_order", "cross_correlation", "analytic_phase", "phases_from_events",
                     "spike_events", "burst_onsets"], "neuroplast.metrics.sync"),
    **dict.fromkeys(["acc", "bwt", "fwt", "forgetting", "continual_summary"], "neuroplast.metrics.continual"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
