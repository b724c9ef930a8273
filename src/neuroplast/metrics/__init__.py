"""Pure functions of recorded statistics, trajectories and weights: dormancy, chaos, synchrony,
continual learning, multifractal neuron interactions, dynamic functional connectomes."""

from neuroplast._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["dormant_ratio", "dormant_mask", "dormant_scores"], "neuroplast.metrics.dormant"),
    **dict.fromkeys(["zero_one_test", "sample_entropy"], "neuroplast.metrics.chaos"),
    **dict.fromkeys(["kuramoto_order", "cross_correlation", "analytic_phase", "phases_from_events",
                     "spike_events", "burst_onsets"], "neuroplast.metrics.sync"),
    **dict.fromkeys(["acc", "bwt", "fwt", "forgetting", "continual_summary"], "neuroplast.metrics.continual"),
    **dict.fromkeys(["interaction_network", "sandbox_spectrum", "spectrum_from_tau", "one_hop_spectrum",
                     "neuromfa", "emergence_degree", "shuffle_within_layers", "InteractionNetwork",
                     "Spectrum", "NeuroMFA"],
                    "neuroplast.metrics.multifractal"),
    **dict.fromkeys(["affinity_tensor", "instantaneous_affinity", "smoothed_derivative", "ntf",
                     "detect_communities", "static_correlation", "dynamic_connectome", "dominant_factor",
                     "planted_calcium_traces", "ConnectomeAtlas", "NTFResult", "PlantedTraces",
                     "pairs_to_matrix", "pair_index"], "neuroplast.metrics.connectome"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
