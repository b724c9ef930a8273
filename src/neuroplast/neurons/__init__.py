"""Model neurons: spiking, astrocyte-modulated, dendritic, perforated, gated, superconducting and map neurons.

Each model is a pure step function with a NamedTuple state plus a thin module; names are imported
lazily from their modules (``neuroplast.neurons.LIF`` loads only ``neurons.spiking``).
"""

from neuroplast._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        ["LIF", "IF", "LIFState", "LIFParams", "lif_step", "lif_multistep", "lif_multistep_reference",
         "mpr", "quantization_error", "reset_states"], "neuroplast.neurons.spiking"),
    **dict.fromkeys(["poisson", "direct"], "neuroplast.neurons.encoders"),
    **dict.fromkeys(["AstroLIF", "RecurrentAstroLIF", "AstroState", "AstroParams", "astro_lif_step"],
                    "neuroplast.neurons.astro"),
    **dict.fromkeys(["DendriticLayer", "KWinners", "false_match_probability", "monte_carlo_false_match",
                     "union_false_match_probability"], "neuroplast.neurons.dendritic"),
    **dict.fromkeys(["NeuronGate", "NeuronScale", "load_gate_file", "gate", "hard_gate"],
                    "neuroplast.neurons.gating"),
    **dict.fromkeys(["PerforatedBackprop", "cascade_correlation"], "neuroplast.neurons.perforated"),
    **dict.fromkeys(["SFQLayer", "SFQNetwork", "SFQParams", "sfq_neuron_step", "bernoulli_pass"],
                    "neuroplast.neurons.sfq"),
    **dict.fromkeys(["ChialvoNeuron", "RulkovNeuron", "ChialvoParams", "RulkovParams", "MapState",
                     "chialvo_step", "rulkov_step", "rulkov_nonchaotic_step"], "neuroplast.neurons.maps"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
