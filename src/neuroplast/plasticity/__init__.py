"""Local learning rules: STDP with traces and homeostasis, Oja's subspace rule, homeostatic
regulation of the learning rate."""

from neuroplast._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["STDP", "STDPParams", "STDPState", "stdp_step", "pair_weight_change",
                     "AdaptiveThreshold", "SynapticScaling"], "neuroplast.plasticity.stdp"),
    **dict.fromkeys(["OjaSubspace", "oja_subspace_delta"], "neuroplast.plasticity.hebbian"),
    **dict.fromkeys(["HomeostaticRegulator", "RandomRegulator", "threshold_effects"],
                    "neuroplast.plasticity.homeostasis"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
