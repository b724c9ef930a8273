"""Dynamic functional connectome: windowed pairwise affinities, non-negative tensor factorisation and
weighted community detection per factor (Dyballa et al. 2024, arXiv:2402.14102).

Traces are ``(T, N)`` (one recording) or ``(A, T, N)`` (A recordings, "animals"), time first and
neurons last. The pipeline:

1. Differential affinity. Each trace is smoothed with a Gaussian (width ``sigma`` steps) and
   differentiated (central differences); the derivative is scaled by its standard deviation over the
   recording, d^_i(t) = x~_i'(t) / std_t x~_i'. Two neurons are affine at time t when they change
   together, in the same direction::

       a_ij(t) = max(0, d^_i(t) d^_j(t))          (non-negative, 0 for a flat trace)

   and the tensor entry of window w is its mean, A[w, a, p] = (1/L) sum_{t in w} a_ij(t), with the
   pair p = (i, j), i < j, in ``numpy.triu_indices`` order. (The paper's affinity compares the time
   derivatives of two traces so that co-rising / co-falling neurons are affine and quiescent ones are
   not; the closed form above is our reading of it, not a copy: its exact equation was not available
   to us, see the study docstring.) ``kind="correlation"`` gives the rectified windowed Pearson
   correlation of the traces instead, max(0, r_ij(w)).
2. NTF. A rank-R non-negative CP model A[w, a, p] ~ sum_r lambda_r f_t[w, r] f_w[a, r] f_a[p, r]
   (tensorly's HALS, random non-negative init from ``seed``, best of ``restarts``).
3. Communities. Each pair pattern f_a[:, r] is a weighted graph on the N neurons; Louvain
   modularity maximisation (networkx, ``seed``) splits it. (The paper uses a nested weighted SBM
   from graph-tool, which is not on PyPI.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "PlantedTraces",
    "ConnectomeAtlas",
    "NTFResult",
    "pair_index",
    "pairs_to_matrix",
    "smoothed_derivative",
    "instantaneous_affinity",
    "affinity_tensor",
    "ntf",
    "detect_communities",
    "static_correlation",
    "dynamic_connectome",
    "dominant_factor",
    "planted_calcium_traces",
]


# ------------------------------------------------------------------------------------------------
def _as_traces(traces: Any) -> Tensor:
    """(T, N) or (A, T, N) -> float64 (A, T, N)."""
    if not isinstance(traces, Tensor):
        try:
            traces = torch.as_tensor(np.asarray(traces))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"traces: expected a tensor or array, got {type(traces).__name__}") from exc
    if traces.dim() not in (2, 3):
        raise ValueError(f"traces: expected shape (T, N) or (A, T, N), got {tuple(traces.shape)}")
    x = traces.detach().to(torch.float64)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.shape[1] < 3 or x.shape[2] < 2:
        raise ValueError(
            f"traces: expected T >= 3 time steps and N >= 2 neurons, got shape {tuple(traces.shape)}"
        )
    if not torch.isfinite(x).all():
        raise ValueError("traces: expected finite values, got NaN or inf")
    return x


def pair_index(n: int) -> tuple[Tensor, Tensor]:
    """Rows i and columns j of the N(N-1)/2 pairs i < j (``numpy.triu_indices(n, 1)`` order)."""
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n: expected an int >= 2, got {n!r}")
    i, j = np.triu_indices(n, 1)
    return torch.as_tensor(i), torch.as_tensor(j)


def pairs_to_matrix(pairs: Any, n: int) -> Tensor:
    """Symmetric (N, N) matrix with zero diagonal from a length N(N-1)/2 pair vector."""
    p = torch.as_tensor(np.asarray(pairs) if not isinstance(pairs, Tensor) else pairs).to(torch.float64)
    if p.dim() != 1 or p.numel() != n * (n - 1) // 2:
        raise ValueError(
            f"pairs: expected a vector of n(n-1)/2 = {n * (n - 1) // 2} values, got {tuple(p.shape)}"
        )
    i, j = pair_index(n)
    m = torch.zeros(n, n, dtype=torch.float64)
    m[i, j] = p
    m[j, i] = p
    return m


def smoothed_derivative(traces: Any, sigma: float = 2.0) -> Tensor:
    """Gaussian-smoothed (width ``sigma`` steps, radius round(4 sigma), edges replicated) central-difference
    derivative of each trace, (A, T, N); ``sigma=0`` skips the smoothing."""
    x = _as_traces(traces)
    if not (isinstance(sigma, (int, float)) and sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma: expected a finite number >= 0, got {sigma!r}")
    a, t, n = x.shape
    if sigma > 0:
        radius = int(4.0 * sigma + 0.5)
        k = torch.arange(-radius, radius + 1, dtype=torch.float64)
        kernel = torch.exp(-0.5 * (k / sigma) ** 2)
        kernel = kernel / kernel.sum()
        flat = x.permute(0, 2, 1).reshape(a * n, 1, t)  # (A*N, 1, T)
        flat = torch.nn.functional.pad(flat, (radius, radius), mode="replicate")
        x = torch.nn.functional.conv1d(flat, kernel.view(1, 1, -1)).reshape(a, n, t).permute(0, 2, 1)
    d = torch.empty_like(x)
    d[:, 1:-1] = (x[:, 2:] - x[:, :-2]) / 2
    d[:, 0] = x[:, 1] - x[:, 0]
    d[:, -1] = x[:, -1] - x[:, -2]
    return d


def instantaneous_affinity(traces: Any, sigma: float = 2.0) -> Tensor:
    """a_ij(t) = max(0, d^_i(t) d^_j(t)), d^ = derivative / its std over the recording: (A, T, P)."""
    d = smoothed_derivative(traces, sigma)
    sd = d.std(dim=1, unbiased=False, keepdim=True)  # (A, 1, N)
    dn = torch.where(sd > 1e-12, d / sd.clamp_min(1e-12), torch.zeros_like(d))
    i, j = pair_index(d.shape[2])
    return (dn[..., i] * dn[..., j]).clamp_min(0.0)


def _windows(t: int, window: int, stride: int) -> Tensor:
    for name, v in (("window", window), ("stride", stride)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
    if window > t:
        raise ValueError(f"window: expected at most the T={t} time steps of the traces, got {window}")
    return torch.arange(0, t - window + 1, stride)


def affinity_tensor(
    traces: Any, window: int, stride: int | None = None, sigma: float = 2.0, kind: str = "differential"
) -> tuple[Tensor, Tensor]:
    """Windowed affinity tensor (W, A, P) and the window start times (W,).

    ``kind="differential"``: window mean of max(0, d^_i(t) d^_j(t)); ``kind="correlation"``: max(0, r_ij)
    with r_ij the Pearson correlation of the raw traces inside the window (0 when a trace is flat).
    """
    x = _as_traces(traces)
    stride = window if stride is None else stride
    starts = _windows(x.shape[1], window, stride)
    i, j = pair_index(x.shape[2])
    if kind == "differential":
        inst = instantaneous_affinity(x, sigma)  # (A, T, P)
        c = torch.cat([torch.zeros_like(inst[:, :1]), inst.cumsum(1)], 1)
        out = (c[:, starts + window] - c[:, starts]) / window  # (A, W, P)
    elif kind == "correlation":
        seg = x.unfold(1, window, stride)[:, : len(starts)]  # (A, W, N, L)
        seg = seg - seg.mean(-1, keepdim=True)
        norm = seg.norm(dim=-1)  # (A, W, N)
        z = torch.where(
            norm[..., None] > 1e-12, seg / norm[..., None].clamp_min(1e-12), torch.zeros_like(seg)
        )
        out = (z[:, :, i] * z[:, :, j]).sum(-1).clamp_min(0.0)
    else:
        raise ValueError(f"kind: expected 'differential' or 'correlation', got {kind!r}")
    return out.permute(1, 0, 2).contiguous(), starts


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NTFResult:
    """Rank-R non-negative CP model: tensor ~ sum_r weights[r] * outer(factors[0][:, r], factors[1][:, r],
    ...); each factor column has unit 2-norm. ``rel_error`` = ||X - X_hat|| / ||X||."""

    weights: Tensor
    factors: tuple[Tensor, ...]
    rel_error: float

    def reconstruct(self) -> Tensor:
        letters = "abcdefgh"[: len(self.factors)]
        eq = ",".join(f"{c}r" for c in letters) + ",r->" + letters
        return torch.einsum(eq, *self.factors, self.weights)


def ntf(
    tensor: Any, rank: int, *, seed: int = 0, restarts: int = 3, n_iter_max: int = 500, tol: float = 1e-8
) -> NTFResult:
    """Non-negative CP decomposition (tensorly HALS), best reconstruction of ``restarts`` random inits
    seeded from ``seed``; columns normalised, scale in ``weights``, components sorted by weight."""
    import tensorly as tl
    from tensorly.decomposition import non_negative_parafac_hals

    x = (
        tensor.detach().double().numpy()
        if isinstance(tensor, Tensor)
        else np.asarray(tensor, dtype=np.float64)
    )
    if x.ndim < 2:
        raise ValueError(f"tensor: expected at least 2 modes, got shape {x.shape}")
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValueError("tensor: expected finite non-negative entries")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank: expected an int >= 1, got {rank!r}")
    if not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts: expected an int >= 1, got {restarts!r}")
    total = float(np.linalg.norm(x))
    if total == 0.0:
        raise ValueError("tensor: expected some non-zero entry, got all zeros")
    best: tuple[float, np.ndarray, list[np.ndarray]] | None = None
    with tl.backend_context("numpy"):
        for k in range(restarts):
            rs = np.random.RandomState(seed * 1009 + k)
            init = tl.cp_tensor.CPTensor((np.ones(rank), [rs.uniform(0.0, 1.0, (s, rank)) for s in x.shape]))
            cp = non_negative_parafac_hals(x, rank, n_iter_max=n_iter_max, init=init, tol=tol)
            w, fs = cp
            fs = [np.asarray(f, dtype=np.float64) for f in fs]
            w = np.asarray(w, dtype=np.float64) * np.ones(rank)
            for f in fs:
                nrm = np.linalg.norm(f, axis=0)
                w = w * nrm
                f /= np.where(nrm > 0, nrm, 1.0)
            err = float(np.linalg.norm(x - tl.cp_to_tensor((w, fs)))) / total
            if best is None or err < best[0] - 1e-12:
                best = (err, w, fs)
    assert best is not None
    err, w, fs = best
    order = np.argsort(-w, kind="stable")
    return NTFResult(
        weights=torch.as_tensor(w[order].copy()),
        factors=tuple(torch.as_tensor(f[:, order].copy()) for f in fs),
        rel_error=err,
    )


def detect_communities(weights: Any, seed: int = 0, resolution: float = 1.0) -> Tensor:
    """Louvain communities (networkx, modularity with ``resolution``, ``seed``) of the weighted graph given
    as a symmetric (N, N) matrix or a pair vector; labels (N,) int64, 0 = the community of neuron 0,
    then numbered in order of each community's first neuron. Isolated neurons form singletons."""
    import networkx as nx

    w = torch.as_tensor(np.asarray(weights) if not isinstance(weights, Tensor) else weights).double()
    if w.dim() == 1:
        n = int(round((1 + math.sqrt(1 + 8 * w.numel())) / 2))
        w = pairs_to_matrix(w, n)
    if w.dim() != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"weights: expected a square (N, N) matrix or a pair vector, got {tuple(w.shape)}")
    if (w < 0).any() or not torch.isfinite(w).all():
        raise ValueError("weights: expected finite non-negative edge weights")
    if not torch.allclose(w, w.T):
        raise ValueError("weights: expected a symmetric matrix")
    n = w.shape[0]
    g = nx.Graph()
    g.add_nodes_from(range(n))
    i, j = pair_index(n)
    vals = w[i, j]
    keep = vals > 0
    g.add_weighted_edges_from(zip(i[keep].tolist(), j[keep].tolist(), vals[keep].tolist(), strict=True))
    comms = nx.community.louvain_communities(g, weight="weight", resolution=resolution, seed=seed)
    comms = sorted((sorted(c) for c in comms), key=lambda c: c[0])
    labels = torch.empty(n, dtype=torch.int64)
    for k, c in enumerate(comms):
        labels[c] = k
    return labels


def static_correlation(traces: Any) -> Tensor:
    """Baseline: one Pearson correlation matrix over the whole recording(s), negatives set to 0, diagonal 0,
    averaged over recordings: (N, N)."""
    x = _as_traces(traces)
    z = x - x.mean(1, keepdim=True)
    nrm = z.norm(dim=1, keepdim=True)
    z = torch.where(nrm > 1e-12, z / nrm.clamp_min(1e-12), torch.zeros_like(z))
    c = torch.einsum("atn,atm->nm", z, z) / x.shape[0]
    c = c.clamp_min(0.0)
    c.fill_diagonal_(0.0)
    return c


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectomeAtlas:
    """Result of :func:`dynamic_connectome`: temporal (W, R), animal (A, R) and pair (P, R) loadings with unit
    columns, weights (R,), window starts (W,), Louvain labels per factor (R, N), NTF relative error."""

    temporal: Tensor
    animal: Tensor
    pairs: Tensor
    weights: Tensor
    starts: Tensor
    window: int
    labels: Tensor
    rel_error: float

    @property
    def n_neurons(self) -> int:
        return int(self.labels.shape[1])

    def matrix(self, r: int) -> Tensor:
        """Factor r's pair pattern as a symmetric (N, N) affinity matrix."""
        return pairs_to_matrix(self.pairs[:, r], self.n_neurons)


def dynamic_connectome(
    traces: Any,
    window: int,
    rank: int,
    *,
    stride: int | None = None,
    sigma: float = 2.0,
    kind: str = "differential",
    seed: int = 0,
    restarts: int = 3,
    n_iter_max: int = 500,
    resolution: float = 1.0,
) -> ConnectomeAtlas:
    """Affinity tensor (W, A, P) -> rank-R NTF -> Louvain communities of every pair factor."""
    tensor, starts = affinity_tensor(traces, window, stride, sigma, kind)
    res = ntf(tensor, rank, seed=seed, restarts=restarts, n_iter_max=n_iter_max)
    f_t, f_w, f_a = res.factors
    labels = torch.stack(
        [detect_communities(f_a[:, r], seed=seed, resolution=resolution) for r in range(rank)]
    )
    return ConnectomeAtlas(f_t, f_w, f_a, res.weights, starts, window, labels, res.rel_error)


def dominant_factor(atlas: ConnectomeAtlas) -> Tensor:
    """Index (W,) of the factor contributing most to each window:
    argmax_r lambda_r f_t[w, r] mean_a f_w[a, r]."""
    contrib = atlas.temporal * (atlas.weights * atlas.animal.mean(0))[None, :]
    return contrib.argmax(1)


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlantedTraces:
    """Synthetic calcium traces (A, T, N), planted community labels per epoch (E, N) and the epoch of every
    time step (T,)."""

    traces: Tensor
    labels: Tensor
    epoch: Tensor


def planted_calcium_traces(
    n_neurons: int = 30,
    n_animals: int = 5,
    n_epochs: int = 3,
    n_communities: int = 3,
    epoch_len: int = 600,
    event_rate: float = 0.03,
    p_join: float = 0.9,
    background_rate: float = 0.005,
    tau: float = 10.0,
    noise: float = 0.05,
    generator: torch.Generator | None = None,
) -> PlantedTraces:
    """Calcium-like traces with planted, time-varying communities.

    In epoch e every neuron belongs to one of ``n_communities`` equal groups (a fresh random partition per
    epoch, the same in every animal). Each group has a shared Bernoulli(``event_rate``) event train per step;
    a member fires at a group event with probability ``p_join`` and also fires alone at
    ``background_rate``. Spikes s (amplitude U(0.5, 1.5)) drive c_t = exp(-1/tau) c_{t-1} + s_t, and the
    trace is c + N(0, noise^2).
    """
    for name, v, lo in (
        ("n_neurons", n_neurons, 2),
        ("n_animals", n_animals, 1),
        ("n_epochs", n_epochs, 1),
        ("n_communities", n_communities, 1),
        ("epoch_len", epoch_len, 3),
    ):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name}: expected an int >= {lo}, got {v!r}")
    if n_communities > n_neurons:
        raise ValueError(f"n_communities: expected at most n_neurons={n_neurons}, got {n_communities}")
    for name, v in (("event_rate", event_rate), ("p_join", p_join), ("background_rate", background_rate)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name}: expected a probability in [0, 1], got {v!r}")
    if not tau > 0 or not noise >= 0:
        raise ValueError(f"tau, noise: expected tau > 0 and noise >= 0, got tau={tau!r}, noise={noise!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    n, e, k, L = n_neurons, n_epochs, n_communities, epoch_len
    base = torch.arange(n) * k // n  # equal-size groups
    labels = torch.stack([base[torch.randperm(n, generator=g)] for _ in range(e)])  # (E, N)
    T = e * L
    epoch = torch.arange(T) // L
    traces = torch.empty(n_animals, T, n, dtype=torch.float64)
    decay = math.exp(-1.0 / tau)
    for a in range(n_animals):
        ev = torch.rand(T, k, generator=g, dtype=torch.float64) < event_rate  # (T, K)
        member = labels[epoch]  # (T, N)
        group_ev = torch.gather(ev, 1, member)  # (T, N)
        join = torch.rand(T, n, generator=g, dtype=torch.float64) < p_join
        alone = torch.rand(T, n, generator=g, dtype=torch.float64) < background_rate
        amp = 0.5 + torch.rand(T, n, generator=g, dtype=torch.float64)
        s = ((group_ev & join) | alone).double() * amp
        c = torch.zeros(n, dtype=torch.float64)
        out = torch.empty(T, n, dtype=torch.float64)
        for t in range(T):
            c = decay * c + s[t]
            out[t] = c
        traces[a] = out + noise * torch.randn(T, n, generator=g, dtype=torch.float64)
    return PlantedTraces(traces, labels, epoch)
