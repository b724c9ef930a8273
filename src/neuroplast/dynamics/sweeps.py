"""Measures over a batched parameter sweep of a map network: chaos indicators against the largest
Lyapunov exponent, bifurcations of continued branches against orbit transitions, coexisting
attractors per sweep point, and JSON-ready summaries of them.

A sweep holds P parameter values; when every value is iterated from M initial conditions the rows
are ordered ``p * M + m`` (as :meth:`~neuroplast.dynamics.networks.MapNetwork.repeat` gives). Orbit
codes are those of :class:`~neuroplast.dynamics.analysis.OrbitClass`: 0 divergent, 1 fixed point,
2 periodic, 3 quasiperiodic, 4 chaotic. Used by arXiv:2405.06000 and arXiv:2405.05675.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from neuroplast.dynamics.analysis import (
    BifurcationDiagram,
    Crossing,
    OrbitClass,
    coexisting_attractors,
    detect_crossings,
    match_bifurcations,
    orbit_transitions,
    stability_losses,
)

__all__ = [
    "finite_mean",
    "finite_or_none",
    "class_counts",
    "zero_one_k",
    "regime_agreement",
    "regime_means",
    "BranchBifurcations",
    "branch_bifurcations",
    "attractors_per_point",
    "regime_point",
    "plot_bifurcation_lyapunov",
    "plot_phase_portraits",
    "plot_zero_one_sampen",
]


def finite_mean(x: Tensor) -> float:
    """Mean of the finite entries of ``x``; NaN when there are none."""
    x = x[torch.isfinite(x)]
    return float(x.mean()) if x.numel() else float("nan")


def finite_or_none(values: Iterable[float]) -> list[float | None]:
    """``values`` with every non-finite number replaced by None (JSON has no NaN or inf)."""
    return [v if math.isfinite(v) else None for v in values]


def class_counts(classes: OrbitClass | Sequence[str]) -> dict[str, int]:
    """How many orbits fall in each class, by name (:meth:`OrbitClass.names`), keys sorted."""
    names = classes.names() if isinstance(classes, OrbitClass) else list(classes)
    return {n: names.count(n) for n in sorted(set(names))}


def zero_one_k(
    series: Tensor, diverged: Tensor, n_c: int = 100, generator: torch.Generator | None = None
) -> Tensor:
    """Gottwald-Melbourne 0-1 test K (:func:`neuroplast.metrics.chaos.zero_one_test`) of each row of
    ``series`` (B, N), with constant (hence regular) bounded series set to K = 0 instead of NaN;
    rows flagged in ``diverged`` (B,) keep NaN."""
    from neuroplast.metrics.chaos import zero_one_test

    kk = zero_one_test(series, n_c=n_c, generator=generator)
    return torch.where(torch.isnan(kk) & ~diverged, torch.zeros_like(kk), kk)


def regime_agreement(
    k_values: Tensor,
    lam: Tensor,
    diverged: Tensor,
    classes: OrbitClass,
    lyap_tol: float = 5e-3,
    k_threshold: float = 0.5,
) -> dict[str, Any]:
    """Agreement of the 0-1 test with the sign of the largest Lyapunov exponent over a sweep.

    All arguments are per orbit (B,). An orbit counts as chaotic for the 0-1 test when
    K > ``k_threshold`` and for Lyapunov when lambda_max > ``lyap_tol``. Only bounded orbits with a
    finite K are compared (``ok``); the headline agreement uses those whose lambda_max has a
    definite sign (|lambda_max| > ``lyap_tol``), the quasiperiodic ones (|lambda_max| <= lyap_tol)
    are reported apart. Returns ``k_lyap_agreement`` (NaN if none is compared),
    ``n_orbits_compared``, ``k_lyap_agreement_incl_quasiperiodic`` (all ``ok`` orbits),
    ``mean_k_quasiperiodic``, ``mean_k_periodic`` (period >= 2) and ``mean_k_chaotic`` (by the
    orbit classes).
    """
    if not (k_values.shape == lam.shape == diverged.shape == classes.code.shape) or k_values.dim() != 1:
        raise ValueError(
            "k_values, lam, diverged and classes.code must all be (B,); got "
            f"{tuple(k_values.shape)}, {tuple(lam.shape)}, {tuple(diverged.shape)}, "
            f"{tuple(classes.code.shape)}"
        )
    ok = ~diverged & torch.isfinite(k_values)
    signed = ok & (lam.abs() > lyap_tol)  # orbits whose lambda_max has a definite sign
    same = (k_values > k_threshold) == (lam > lyap_tol)
    quasi = ok & (lam.abs() <= lyap_tol)
    chaotic = classes.code == 4
    periodic = (classes.code == 2) & (classes.period >= 2)
    return {
        "k_lyap_agreement": float(same[signed].double().mean()),
        "n_orbits_compared": int(signed.sum()),
        "k_lyap_agreement_incl_quasiperiodic": float(same[ok].double().mean()),
        "mean_k_quasiperiodic": finite_mean(k_values[quasi]),
        "mean_k_periodic": finite_mean(k_values[periodic & ok]),
        "mean_k_chaotic": finite_mean(k_values[chaotic & ok]),
    }


def regime_means(values: Tensor, classes: OrbitClass) -> tuple[float, float]:
    """Mean of the finite ``values`` (B,) (e.g. sample entropy) on chaotic and on periodic
    (period >= 2) orbits: ``(chaotic_mean, periodic_mean)``, NaN where a class is empty."""
    if values.shape != classes.code.shape:
        raise ValueError(
            f"values must match classes.code {tuple(classes.code.shape)}, got {tuple(values.shape)}"
        )
    chaotic = classes.code == 4
    periodic = (classes.code == 2) & (classes.period >= 2)
    return finite_mean(values[chaotic]), finite_mean(values[periodic])


@dataclass
class BranchBifurcations:
    """Stability-changing multiplier crossings of continued branches, matched to orbit transitions."""

    matched: list[tuple[Crossing, bool]]  # (crossing, has an orbit transition of its kind nearby)
    transitions: list[tuple[int, float, str]]  # (index, midpoint parameter, kind), see orbit_transitions
    match: float  # fraction matched, 0.0 if none or if a required kind is missing

    def crossings_json(self) -> list[dict[str, Any]]:
        return [
            {
                "kind": c.kind,
                "param": c.param,
                "index": c.index,
                "multiplier": [c.multiplier.real, c.multiplier.imag],
                "direction": c.direction,
                "multiplicity": c.multiplicity,
                "matched": m,
            }
            for c, m in self.matched
        ]

    def transitions_json(self) -> list[dict[str, Any]]:
        return [{"index": i, "param": p, "kind": k} for i, p, k in self.transitions]

    def summary(self) -> dict[str, Any]:
        """JSON-ready ``crossings``, ``orbit_transitions`` and ``bifurcation_match``."""
        return {
            "crossings": self.crossings_json(),
            "orbit_transitions": self.transitions_json(),
            "bifurcation_match": self.match,
        }


def branch_bifurcations(
    params: Tensor,
    branches: Sequence[tuple[Tensor, Tensor | None]],
    classes: OrbitClass,
    window: int = 3,
    require: Iterable[str] = ("period-doubling", "neimark-sacker"),
) -> BranchBifurcations:
    """Bifurcations of solution branches along a sweep, checked against the orbits.

    ``params``: (P,) sweep values in order; ``branches``: one ``(eigenvalues (P, D), valid (P,) or
    None)`` per branch (fixed points, period-2 points, ...). The unit-circle crossings of each
    branch (:func:`detect_crossings`) at which it changes stability (:func:`stability_losses`) are
    paired with the transitions of the orbit classes ``classes`` (P,) of the same kind within
    ``window`` sweep points (:func:`match_bifurcations`). ``match`` is the fraction of crossings
    matched, or 0.0 when there is none or a kind in ``require`` was not found among them.
    """
    crossings: list[Crossing] = []
    for ev, valid in branches:
        crossings += stability_losses(detect_crossings(params, ev, valid), ev)
    transitions = orbit_transitions(params, classes)
    matched = match_bifurcations(crossings, transitions, window)
    kinds = {c.kind for c, _ in matched}
    frac = sum(ok for _, ok in matched) / len(matched) if matched else 0.0
    return BranchBifurcations(matched, transitions, frac if set(require) <= kinds else 0.0)


def attractors_per_point(
    records: Tensor,
    diverged: Tensor,
    n_points: int,
    among: Tensor | None = None,
    tol: float = 0.05,
) -> tuple[list[int], list[int]]:
    """Coexisting attractors at every sweep point (:func:`coexisting_attractors` per point).

    ``records``: (T, P * M, d) orbits after the transient, rows ``p * M + m``; ``diverged``:
    (P * M,). Returns ``(n_attractors, n_among)``, each a list of P counts: the distinct bounded
    attractors of each point, and the distinct attractor labels among the orbits flagged in
    ``among`` (P * M,) (e.g. the chaotic ones; equal to ``n_attractors`` when None).
    """
    r = records if records.dim() == 3 else records.unsqueeze(-1)
    if r.shape[1] % n_points or diverged.shape != (r.shape[1],):
        raise ValueError(
            f"records (T, P*M, d) needs P*M a multiple of n_points={n_points} and diverged (P*M,); got "
            f"{tuple(records.shape)} and {tuple(diverged.shape)}"
        )
    m = r.shape[1] // n_points
    rec = r.reshape(r.shape[0], n_points, m, -1)
    n_attr: list[int] = []
    n_among: list[int] = []
    for p in range(n_points):
        labels, n = coexisting_attractors(rec[:, p], diverged[p * m : (p + 1) * m], tol)
        n_attr.append(n)
        n_among.append(n if among is None else len(set(labels[among[p * m : (p + 1) * m]].tolist())))
    return n_attr, n_among


# ---------------------------------------------------------------------------- figures
# Plain matplotlib Axes calls (no import here): the caller makes the figure and sets its labels.


def regime_point(names: Sequence[str], stage: str, into: int = 0) -> int | None:
    """Index of a sweep point in regime ``stage`` (a name of :meth:`OrbitClass.names`): its first
    occurrence, moved up to ``into`` points further while the regime lasts (away from its boundary,
    where orbits converge slowly); None when the regime is absent."""
    if stage not in names:
        return None
    p = start = names.index(stage)
    while p + 1 < len(names) and names[p + 1] == stage and p - start < into:
        p += 1
    return p


def plot_bifurcation_lyapunov(
    ax_diagram: Any,
    ax_lyap: Any,
    params: Tensor,
    x: Tensor,
    lam: Tensor,
    diverged: Tensor,
    n_last: int = 200,
) -> None:
    """Bifurcation diagram of one coordinate and lambda_max along a sweep with M orbits per point.

    ``params`` (P,); ``x`` (T, P * M) the coordinate after the transient (rows ``p * M + m``), of
    which the last ``n_last`` samples are drawn; ``lam`` and ``diverged`` (P * M,).
    """
    n = params.shape[0]
    pts = x[-n_last:].t().reshape(n, -1)
    BifurcationDiagram(params, pts, diverged.reshape(n, -1)).plot(ax_diagram)
    ax_lyap.plot(params.numpy(), lam.reshape(n, -1).numpy(), ".", ms=2, c="C0")
    ax_lyap.axhline(0, c="k", lw=0.5)
    ax_lyap.set_ylabel("lambda_max")


def plot_phase_portraits(
    axes: Sequence[Any],
    stages: Sequence[str],
    classes: OrbitClass,
    params: Tensor,
    x: Tensor,
    y: Tensor,
    param_name: str,
    into: int = 0,
    labels: tuple[str, str] = ("x", "y"),
) -> None:
    """One phase portrait (y against x) per regime in ``stages``, at the point :func:`regime_point`
    picks from ``classes`` (P,); ``x``, ``y``: (T, P) the orbit drawn at each point. An absent
    regime leaves its axes empty. ``labels`` name x on every axes and y on the first."""
    names = classes.names()
    for ax, stage in zip(axes, stages, strict=True):
        p = regime_point(names, stage, into)
        if p is not None:
            ax.plot(x[:, p].numpy(), y[:, p].numpy(), ".", ms=1)
            ax.set_title(f"{stage}\n{param_name}={float(params[p]):.4f}", fontsize=8)
        ax.set_xlabel(labels[0])
    axes[0].set_ylabel(labels[1])


def plot_zero_one_sampen(ax_k: Any, ax_sampen: Any, params: Tensor, k_values: Tensor, sampen: Tensor) -> None:
    """0-1 test K and sample entropy against the sweep parameter (one value per point)."""
    ax_k.plot(params.numpy(), k_values.numpy(), ".", ms=3)
    ax_k.set_ylabel("0-1 test K")
    ax_sampen.plot(params.numpy(), sampen.numpy(), ".", ms=3, c="C1")
