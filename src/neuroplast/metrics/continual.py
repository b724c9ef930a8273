"""Continual-learning metrics from the accuracy matrix.

``R[i, j]`` is the accuracy on task j after training task i (T x T; rows of tasks not trained
yet are NaN, so the matrix of a partly finished run is valid input). With ``T`` the last
trained task (0-based below, the papers count from 1):

- ACC = mean_j R[T, j]                                   (over j <= T)
- BWT = mean_{j<T} (R[T, j] - R[j, j])                   (GPM, Saha et al. 2021, arXiv:2103.09762;
                                                         Lopez-Paz & Ranzato 2017, arXiv:1706.08840)
- FWT = mean_{j>0} (R[j-1, j] - b_j)                     (b_j: accuracy of the untrained model on j)
- forgetting = mean_{j<T} max_{l<T} (R[l, j] - R[T, j])  (Chaudhry et al. 2018, arXiv:1801.10112)

Accuracies are whatever unit R holds (fractions or percentage points); every metric keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_matrix",
    "last_trained",
    "acc",
    "bwt",
    "fwt",
    "forgetting",
    "continual_summary",
    "heatmap",
]


def as_matrix(R: Any) -> np.ndarray:
    """R as a float64 (T, T) numpy array (accepts a tensor, array or nested lists; None -> NaN)."""
    if isinstance(R, torch.Tensor):
        a = R.detach().cpu().double().numpy()
    else:
        a = (
            np.array([[np.nan if v is None else v for v in row] for row in R], dtype=np.float64)
            if isinstance(R, (list, tuple))
            else np.asarray(R, dtype=np.float64)
        )
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"R: expected a square (T, T) accuracy matrix with T >= 1, got shape {a.shape}")
    return a


def last_trained(R: Any) -> int:
    """Index of the last row of R whose entries j <= i are all finite (-1 if no task finished)."""
    a = as_matrix(R)
    last = -1
    for i in range(a.shape[0]):
        if np.all(np.isfinite(a[i, : i + 1])):
            last = i
        else:
            break
    return last


def _last(a: np.ndarray) -> int:
    t = last_trained(a)
    if t < 0:
        raise ValueError("R: no task has finished (row 0 has no finite R[0, 0])")
    return t


def acc(R: Any) -> float:
    """ACC = mean_{j <= T} R[T, j], T the last trained task."""
    a = as_matrix(R)
    t = _last(a)
    return float(np.mean(a[t, : t + 1]))


def bwt(R: Any) -> float:
    """BWT = mean_{j < T} (R[T, j] - R[j, j]); NaN when only one task was trained."""
    a = as_matrix(R)
    t = _last(a)
    if t == 0:
        return math.nan
    return float(np.mean(a[t, :t] - np.diag(a)[:t]))


def fwt(R: Any, baseline: Sequence[float] | np.ndarray | torch.Tensor) -> float:
    """FWT = mean_{0 < j <= T} (R[j-1, j] - b_j); ``baseline`` b: accuracy of the untrained model per task.

    Needs the entries above the diagonal (evaluate every task after each task); NaN when T = 0.
    """
    a = as_matrix(R)
    t = _last(a)
    b = np.asarray(
        baseline.detach().cpu() if isinstance(baseline, torch.Tensor) else baseline, dtype=np.float64
    )
    if b.shape != (a.shape[0],):
        raise ValueError(f"baseline: expected one accuracy per task, shape ({a.shape[0]},), got {b.shape}")
    if t == 0:
        return math.nan
    above = np.array([a[j - 1, j] for j in range(1, t + 1)])
    if not np.all(np.isfinite(above)):
        raise ValueError(
            "R: FWT needs R[j-1, j] (accuracy on task j before training it); evaluate all tasks "
            "after each task"
        )
    return float(np.mean(above - b[1 : t + 1]))


def forgetting(R: Any) -> float:
    """Average forgetting mean_{j<T} max_{j <= l < T} (R[l, j] - R[T, j]); NaN when T = 0."""
    a = as_matrix(R)
    t = _last(a)
    if t == 0:
        return math.nan
    f = [np.max(a[j:t, j]) - a[t, j] for j in range(t)]
    return float(np.mean(f))


def continual_summary(R: Any, baseline: Sequence[float] | None = None) -> dict[str, float | int | None]:
    """``{"acc", "bwt", "forgetting", "fwt", "tasks_done"}`` as JSON-ready numbers (NaN -> None)."""
    a = as_matrix(R)
    t = last_trained(a)
    out: dict[str, float | int | None] = {"tasks_done": t + 1}
    if t < 0:
        return {**out, "acc": None, "bwt": None, "forgetting": None, "fwt": None}
    vals = {"acc": acc(a), "bwt": bwt(a), "forgetting": forgetting(a)}
    try:
        vals["fwt"] = fwt(a, baseline) if baseline is not None else math.nan
    except ValueError:
        vals["fwt"] = math.nan
    out.update({k: (None if not math.isfinite(v) else v) for k, v in vals.items()})
    return out


def heatmap(
    R: Any,
    title: str = "",
    ax: Any = None,
    fmt: str = "{:.1f}",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Any:
    """Draw R as an annotated heatmap (rows: after training task i; columns: task j); returns the figure.

    Uses matplotlib (imported lazily); NaN entries are left blank.
    """
    import matplotlib

    if ax is None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    a = as_matrix(R)
    T = a.shape[0]
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.5 * T + 2.5, 0.45 * T + 2.0))
    else:
        fig = ax.figure
    im = ax.imshow(np.ma.masked_invalid(a), cmap="viridis", vmin=vmin, vmax=vmax)
    finite = a[np.isfinite(a)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    mid = 0.5 * (lo + hi)
    for i in range(T):
        for j in range(T):
            if np.isfinite(a[i, j]):
                ax.text(
                    j,
                    i,
                    fmt.format(a[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if a[i, j] < mid else "black",
                )
    ax.set_xlabel("evaluated on task j")
    ax.set_ylabel("after training task i")
    ax.set_xticks(range(T))
    ax.set_yticks(range(T))
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
