"""Synchrony of a population of oscillating units: Kuramoto order parameter and cross-correlation.

Kuramoto order parameter (arXiv:2405.06000, arXiv:2405.05675)::

    R(t) = | (1/N) sum_j exp(i theta_j(t)) |,    R = time average of R(t)

Phases come from event times (spikes or burst onsets), growing by 2 pi between consecutive
events and interpolated linearly in between, theta_j(t) = 2 pi k + 2 pi (t - t_k) / (t_{k+1} - t_k),
or from the analytic signal (Hilbert transform) of each series.

Cross-correlation coefficient (the Gamma of these papers): with x~ = x - <x>_t,
Gamma_ij = <x~_i x~_j> / sqrt(<x~_i^2> <x~_j^2>), averaged over all pairs (or against a reference unit).
All functions take series as (..., N_units, T) tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "spike_events",
    "burst_onsets",
    "phases_from_events",
    "analytic_phase",
    "kuramoto_order",
    "cross_correlation",
    "rank_correlation",
]


def _check(x: Tensor, name: str, min_dim: int = 2) -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    if x.dim() < min_dim or x.shape[-1] < 2:
        raise ValueError(f"{name} must have shape (..., N_units, T) with T >= 2, got {tuple(x.shape)}")
    return x


def spike_events(x: Tensor, threshold: float) -> Tensor:
    """Boolean events (..., T): upward crossings x[t-1] < threshold <= x[t] (t = 0 is never an event)."""
    x = _check(x, "x", 1)
    ev = torch.zeros(x.shape, dtype=torch.bool)
    ev[..., 1:] = (x[..., :-1] < threshold) & (x[..., 1:] >= threshold)
    return ev


def burst_onsets(events: Tensor, min_gap: int) -> Tensor:
    """First event of each burst: an event with no other event in the preceding ``min_gap`` steps."""
    events = _check(events, "events", 1).bool()
    if min_gap < 1:
        raise ValueError(f"min_gap must be >= 1, got {min_gap}")
    t = events.shape[-1]
    idx = torch.arange(t).expand(events.shape)
    last = torch.where(events, idx, torch.full_like(idx, -(10**9)))
    last = torch.cummax(last, -1).values  # index of the latest event at or before t
    prev = torch.full_like(last, -(10**9))
    prev[..., 1:] = last[..., :-1]
    return events & (idx - prev > min_gap)


def phases_from_events(events: Tensor) -> Tensor:
    """Unwrapped phases (..., T) from boolean events: 2 pi per inter-event interval, linear in
    between; NaN before the first and after the last event of each series."""
    events = _check(events, "events", 1).bool()
    t = events.shape[-1]
    flat = events.reshape(-1, t)
    out = torch.full(flat.shape, float("nan"), dtype=torch.float64)
    ts = torch.arange(t, dtype=torch.float64)
    for i in range(flat.shape[0]):
        ev = torch.nonzero(flat[i]).flatten().to(torch.float64)
        if ev.numel() < 2:
            continue
        k = torch.searchsorted(ev, ts, right=True) - 1  # interval index
        ok = (k >= 0) & (k < ev.numel() - 1)
        kk = k.clamp(0, ev.numel() - 2)
        ph = 2 * torch.pi * (kk + (ts - ev[kk]) / (ev[kk + 1] - ev[kk]))
        out[i] = torch.where(ok, ph, torch.full_like(ph, float("nan")))
    return out.reshape(events.shape)


def analytic_phase(x: Tensor) -> Tensor:
    """Phase (..., T) of the analytic signal of x - mean(x) (Hilbert transform by FFT), in (-pi, pi]."""
    x = _check(x, "x", 1).to(torch.float64)
    t = x.shape[-1]
    f = torch.fft.fft(x - x.mean(-1, keepdim=True), dim=-1)
    h = torch.zeros(t, dtype=torch.float64)
    h[0] = 1
    if t % 2 == 0:
        h[t // 2] = 1
        h[1 : t // 2] = 2
    else:
        h[1 : (t + 1) // 2] = 2
    return torch.angle(torch.fft.ifft(f * h, dim=-1))


def kuramoto_order(phases: Tensor) -> tuple[Tensor, Tensor]:
    """Kuramoto order parameter of phases (..., N_units, T): (R(t) (..., T), time mean R (...)).

    Time points where any unit's phase is NaN (outside its events) are left out of the mean
    (R(t) is NaN there); the mean is NaN if no time point is left.
    """
    phases = _check(phases, "phases")
    z = torch.exp(1j * phases.to(torch.float64)).mean(-2)  # (..., T)
    r_t = z.abs()
    valid = torch.isfinite(r_t)
    cnt = valid.sum(-1)
    mean = torch.where(valid, r_t, torch.zeros_like(r_t)).sum(-1) / cnt.clamp_min(1)
    mean = torch.where(cnt > 0, mean, torch.full_like(mean, float("nan")))
    return r_t, mean


def cross_correlation(x: Tensor, reference: int | None = None, eps: float = 1e-12) -> Tensor:
    """Cross-correlation coefficient Gamma of units (..., N_units, T): the mean over all pairs i < j
    of Pearson's correlation in time, or over j != reference against unit ``reference``.

    A unit whose series is constant (variance < eps, e.g. at a fixed point) has no defined
    correlation: pairs involving it are left out, and Gamma is NaN if none is left.
    """
    x = _check(x, "x").to(torch.float64)
    n = x.shape[-2]
    if n < 2:
        raise ValueError(f"need at least two units, got {n}")
    xc = x - x.mean(-1, keepdim=True)
    var = (xc * xc).mean(-1)  # (..., N)
    cov = xc @ xc.transpose(-1, -2) / x.shape[-1]  # (..., N, N)
    den = torch.sqrt(var[..., :, None] * var[..., None, :])
    ok = (var[..., :, None] > eps) & (var[..., None, :] > eps)
    corr = torch.where(ok, cov / den.clamp_min(eps), torch.zeros_like(cov))
    if reference is None:
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    else:
        if not -n <= reference < n:
            raise ValueError(f"reference must index one of the {n} units, got {reference}")
        mask = torch.zeros(n, n, dtype=torch.bool)
        mask[reference % n] = True
        mask[reference % n, reference % n] = False
    use = ok & mask
    cnt = use.sum((-1, -2))
    g = torch.where(use, corr, torch.zeros_like(corr)).sum((-1, -2)) / cnt.clamp_min(1)
    return torch.where(cnt > 0, g, torch.full_like(g, float("nan")))


def _ranks(v: Tensor) -> Tensor:
    """Average ranks (ties share the mean of their positions)."""
    uniq, inv = torch.unique(v, return_inverse=True)
    order = torch.argsort(v, stable=True)
    pos = torch.empty(v.shape, dtype=torch.float64)
    pos[order] = torch.arange(v.numel(), dtype=torch.float64)
    sums = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inv, pos)
    cnt = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inv, torch.ones_like(pos))
    return (sums / cnt)[inv]


def rank_correlation(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two 1-D tensors over the entries finite in both (average ranks
    for ties); NaN with fewer than 3 such entries or a constant input. Used to ask whether a
    synchrony measure moves with a coupling strength."""
    a = torch.as_tensor(a, dtype=torch.float64).reshape(-1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same number of entries, got {a.numel()} and {b.numel()}")
    ok = torch.isfinite(a) & torch.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    ra, rb = _ranks(a[ok]), _ranks(b[ok])
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])
