"""Continual learning: scenarios, a small strategy protocol, baselines, HLOP and CLNP.

A strategy is a small object with six optional hooks (before a task, batch adaptation, loss penalty,
gradient transformation, after a step, after a task); ``Compose`` chains them and ``run_continual``
is the explicit loop the studies use. Names are imported lazily from their modules.
"""

from neuroplast._lazy import lazy_exports

_P = "neuroplast.continual."
_EXPORTS = {
    **dict.fromkeys(
        ["Task", "JointTask", "Scenario", "permuted", "rotated", "split", "MNIST_MEAN_STD"], _P + "scenarios"
    ),
    **dict.fromkeys(["Batch", "Strategy", "FineTune", "Compose", "ProjectedInputGrad"], _P + "strategy"),
    **dict.fromkeys(["train_task", "evaluate_task", "evaluate_tasks", "run_continual", "ContinualResult",
                     "Experiment", "results_table"], _P + "train"),
    **dict.fromkeys(["mlp", "SpikingMLP"], _P + "models"),
    "EWC": _P + "ewc",
    "SI": _P + "si",
    **dict.fromkeys(["Replay", "ReservoirBuffer", "EpisodicMemory"], _P + "replay"),
    "AGEM": _P + "agem",
    **dict.fromkeys(["GPM", "gpm_basis_update"], _P + "gpm"),
    **dict.fromkeys(["HLOP", "hlop_schedule"], _P + "hlop"),
    "CLNP": _P + "clnp",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
