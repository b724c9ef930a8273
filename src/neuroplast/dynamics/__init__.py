"""Networks of model neurons as dynamical systems: coupled maps, fixed points, bifurcations, Lyapunov."""

from neuroplast._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["MapNetwork", "NodeModel", "ring_star_network", "chialvo_rulkov_chain"],
                    "neuroplast.dynamics.networks"),
    **dict.fromkeys(
        ["jacobian", "fixed_points", "multipliers", "classify_stability", "detect_crossings", "iterate",
         "bifurcation_diagram", "lyapunov_max", "lyapunov_spectrum", "orbit_period", "classify_orbits",
         "coexisting_attractors", "phase_portrait"], "neuroplast.dynamics.analysis"),
    **dict.fromkeys(["regime_agreement", "regime_means", "branch_bifurcations", "BranchBifurcations",
                     "attractors_per_point", "zero_one_k"], "neuroplast.dynamics.sweeps"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
