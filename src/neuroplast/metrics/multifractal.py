"""Neuron-based multifractal analysis (NeuroMFA) of the network that a model's weights define.

Paper: Xiao et al., "Neuron-based Multifractal Analysis of Neuron Interaction Dynamics in Large Models"
(ICLR 2025; arXiv:2402.09099, first titled "Exploring Neuron Interactions and Emergence in LLMs: From the
Multifractal Analysis Perspective"). Facts checked against the paper's text and the authors' code
(joshuaxiao98/Neuron_MFA_LLM).

Neuron interaction network (NIN). Neurons are nodes, grouped in layers L_0 .. L_m; a weight matrix
W_k (out, in) joins neuron i of L_k to neuron j of L_{k+1} when |w_ji| > eps, and the edge has length::

    d_ij = 1 / |w_ji|          (strong interaction = short edge)

A sampled NIN keeps ``sample`` neurons drawn uniformly per layer (the induced subgraph), as the paper
does to keep LLM-sized networks tractable.

Sandbox multifractal analysis (Tel et al. 1989; Liu et al. 2015 for networks). For centres c drawn at
random, M_c(r) = number of nodes within shortest-path distance r of c (c included); M_0 = number of
nodes, d = diameter. Then::

    Z_q(r) = < (M_c(r) / M_0)^(q-1) >_c  ~  (r / d)^tau(q)
    tau(q) = slope of ln Z_q(r) against ln(r / d)     (least squares over the radii)
    alpha(q) = d tau / d q,    f(alpha) = q alpha - tau(q),    D_q = tau(q) / (q - 1)

alpha_0 is the alpha where f peaks (q = 0, f = D_0 = -tau(0), the box dimension); the width is
w = alpha_max - alpha_min. The paper's degree of emergence relative to the first checkpoint::

    E_t = (w_t / w_0) * ln(alpha0_0 / alpha0_t)

Choices stated: shortest paths run over the undirected graph (Dijkstra, scipy.sparse.csgraph); d is
the largest finite distance from the centres. The radii are spread geometrically between the radii
whose balls hold 2% and 50% of the nodes (median over centres). A range set as fractions of d
([0.05 d, 0.5 d], ``range_by="diameter"``) fits lattices as well, but on an NIN whose shortest edge
is long (1/|w| with small weights at initialisation) most small balls hold only their centre, the
fit leaves the scaling range and f(alpha) comes out convex. Both ranges are invariant to a global
rescaling of the weights. alpha is the central difference ``numpy.gradient`` of tau on the q grid.
The authors' code differs: it counts only the one-hop forward neighbours of each neuron, sums
(N_i(r) / N_i(d))^q over neurons and takes forward differences; :func:`one_hop_spectrum` computes that
estimator for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "InteractionNetwork",
    "Spectrum",
    "NeuroMFA",
    "interaction_network",
    "shuffle_within_layers",
    "sandbox_spectrum",
    "spectrum_from_tau",
    "emergence_degree",
    "neuromfa",
    "one_hop_spectrum",
]

DEFAULT_Q = np.round(np.linspace(-3.0, 3.0, 25), 10)


def _rng(seed: int | np.random.Generator | None, what: str) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValueError(f"{what}: expected a seed (int or numpy Generator) for the random choice, got None")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int or numpy.random.Generator, got {type(seed).__name__}")
    return np.random.default_rng(int(seed))


def _as_matrix(w: Any, k: int) -> np.ndarray:
    try:
        import torch

        if isinstance(w, torch.Tensor):
            w = w.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    a = np.asarray(w, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 1:
        raise ValueError(f"weights[{k}]: expected a 2-D (out, in) matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"weights[{k}]: expected finite values, got NaN or inf")
    return a


@dataclass(frozen=True)
class InteractionNetwork:
    """A neuron interaction network: ``lengths`` (N, N) symmetric scipy CSR matrix of edge lengths
    1/|w|; ``layer[n]`` and ``unit[n]`` locate node n (layer index, neuron index within that layer)."""

    lengths: Any
    layer: np.ndarray
    unit: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.lengths.nnz // 2)


def interaction_network(
    weights: Sequence[Any],
    *,
    eps: float = 0.0,
    sample: int | None = None,
    seed: int | np.random.Generator | None = None,
) -> InteractionNetwork:
    """The NIN of a chain of weight matrices ``weights[k]`` of shape (out_k, in_k) (``nn.Linear``
    layout; in_{k+1} must equal out_k). Edges where |w| > ``eps``, of length 1/|w|. With ``sample``,
    at most that many neurons per layer are kept (uniformly, drawn from ``seed``)."""
    from scipy import sparse

    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError(
            f"weights: expected a non-empty sequence of 2-D matrices, got {type(weights).__name__}"
        )
    mats = [_as_matrix(w, k) for k, w in enumerate(weights)]
    for k in range(1, len(mats)):
        if mats[k].shape[1] != mats[k - 1].shape[0]:
            raise ValueError(
                f"weights[{k}]: expected {mats[k - 1].shape[0]} inputs (the outputs of weights[{k - 1}]), "
                f"got shape {mats[k].shape}"
            )
    if not (isinstance(eps, (int, float)) and eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps: expected a finite number >= 0, got {eps!r}")
    sizes = [mats[0].shape[1]] + [m.shape[0] for m in mats]
    if sample is not None:
        if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
            raise ValueError(f"sample: expected an int >= 1 (neurons per layer) or None, got {sample!r}")
        rng = _rng(seed, "interaction_network(sample=...)")
        keep = [np.sort(rng.choice(n, size=min(int(sample), n), replace=False)) for n in sizes]
    else:
        keep = [np.arange(n) for n in sizes]
    offsets = np.concatenate([[0], np.cumsum([len(k) for k in keep])])
    rows, cols, vals = [], [], []
    for k, m in enumerate(mats):
        sub = np.abs(m[np.ix_(keep[k + 1], keep[k])])  # (out kept, in kept)
        j, i = np.nonzero(sub > eps)
        rows.append(offsets[k] + i)
        cols.append(offsets[k + 1] + j)
        vals.append(1.0 / sub[j, i])
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    n = int(offsets[-1])
    lengths = sparse.coo_matrix((np.concatenate([v, v]), (np.concatenate([r, c]), np.concatenate([c, r]))),
                                shape=(n, n)).tocsr()
    layer = np.concatenate([np.full(len(k), i) for i, k in enumerate(keep)])
    return InteractionNetwork(lengths, layer, np.concatenate(keep))


def shuffle_within_layers(weights: Sequence[Any], seed: int | np.random.Generator) -> list[np.ndarray]:
    """The baseline of the study: each matrix's entries permuted at random (same values, no structure)."""
    rng = _rng(seed, "shuffle_within_layers")
    out = []
    for k, w in enumerate(weights):
        a = _as_matrix(w, k)
        out.append(rng.permutation(a.ravel()).reshape(a.shape))
    return out


@dataclass(frozen=True)
class Spectrum:
    """Result of :func:`sandbox_spectrum`: q grid, tau(q), alpha(q), f(alpha), the radii and log Z_q(r)
    (Q, R) of the fit, its R^2 per q, the diameter d, alpha_0, the width and D_0 = -tau(0)."""

    q: np.ndarray
    tau: np.ndarray
    alpha: np.ndarray
    f: np.ndarray
    alpha0: float
    width: float
    dimension: float
    radii: np.ndarray | None = None
    log_z: np.ndarray | None = None
    r2: np.ndarray | None = None
    diameter: float | None = None


def _check_q(q: Any) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 1 or len(q) < 3 or not np.isfinite(q).all() or np.any(np.diff(q) <= 0):
        raise ValueError(f"q: expected an increasing 1-D grid of >= 3 finite values, got {q!r}")
    return q


def spectrum_from_tau(q: Any, tau: Any) -> Spectrum:
    """alpha = d tau / d q (central differences), f = q alpha - tau, alpha_0 = argmax f, width,
    D_0 = -tau(0) (interpolated when 0 is not on the grid)."""
    q = _check_q(q)
    tau = np.asarray(tau, dtype=np.float64)
    if tau.shape != q.shape:
        raise ValueError(f"tau: expected shape {q.shape} (one value per q), got {tau.shape}")
    alpha = np.gradient(tau, q)
    f = q * alpha - tau
    return Spectrum(
        q=q,
        tau=tau,
        alpha=alpha,
        f=f,
        alpha0=float(alpha[int(np.argmax(f))]),
        width=float(alpha.max() - alpha.min()),
        dimension=float(-np.interp(0.0, q, tau)),
    )


def _lengths_matrix(graph: Any) -> Any:
    from scipy import sparse

    if isinstance(graph, InteractionNetwork):
        return graph.lengths
    if sparse.issparse(graph):
        m = sparse.csr_matrix(graph, dtype=np.float64)
    else:
        try:
            import networkx as nx

            if isinstance(graph, nx.Graph):
                m = nx.to_scipy_sparse_array(graph, weight="weight", format="csr", dtype=np.float64)
                m = sparse.csr_matrix(m)
                if not graph.is_directed():
                    m = m.maximum(m.T)
                return m
        except ImportError:  # pragma: no cover - networkx is optional
            pass
        a = np.asarray(graph, dtype=np.float64)
        m = sparse.csr_matrix(a) if a.ndim == 2 else None
    if m is None or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(
            "graph: expected an InteractionNetwork, a networkx graph or a square (N, N) matrix of edge "
            f"lengths with N >= 2, got {getattr(graph, 'shape', type(graph).__name__)}"
        )
    if m.nnz and (not np.isfinite(m.data).all() or m.data.min() < 0):
        raise ValueError("graph: edge lengths must be finite and >= 0")
    return m


def sandbox_spectrum(
    graph: Any,
    q: Any = DEFAULT_Q,
    *,
    centres: int | Sequence[int] = 20,
    radii: Any = None,
    range_by: str = "mass",
    r_range: tuple[float, float] | None = None,
    n_radii: int = 12,
    diameter: float | None = None,
    seed: int | np.random.Generator | None = None,
) -> Spectrum:
    """Sandbox multifractal spectrum of a weighted graph (edge lengths; 0 = no edge).

    ``centres``: how many centres to draw (``seed`` needed unless it covers every node) or explicit
    node ids. ``radii``: explicit radii, else ``n_radii`` geometric radii between r_lo and r_hi:
    with ``range_by="mass"`` (default, ``r_range=(0.02, 0.5)``) the median over centres of the radius
    whose ball holds that fraction of all nodes; with ``range_by="diameter"`` (default (0.05, 0.5))
    those fractions of the diameter d (given, or the largest finite distance from the centres)."""
    from scipy.sparse import csgraph

    q = _check_q(q)
    m = _lengths_matrix(graph)
    n = m.shape[0]
    if isinstance(centres, (int, np.integer)) and not isinstance(centres, bool):
        if centres < 1:
            raise ValueError(f"centres: expected an int >= 1 or a list of node ids, got {centres}")
        if centres >= n:
            idx = np.arange(n)
        else:
            rng = _rng(seed, "sandbox_spectrum(centres < nodes)")
            idx = np.sort(rng.choice(n, int(centres), replace=False))
    else:
        idx = np.asarray(centres)
        if idx.ndim != 1 or len(idx) == 0 or idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"centres: expected node ids in [0, {n}), got {centres!r}")
    dist = csgraph.dijkstra(m, directed=False, indices=idx)  # (C, N)
    finite = dist[np.isfinite(dist)]
    d = float(finite.max()) if diameter is None else float(diameter)
    if not d > 0:
        raise ValueError("graph: the centres reach no other node (diameter 0); is the graph empty?")
    dist.sort(axis=1)
    if radii is None:
        if range_by not in ("mass", "diameter"):
            raise ValueError(f"range_by: expected 'mass' or 'diameter', got {range_by!r}")
        lo, hi = r_range if r_range is not None else ((0.02, 0.5) if range_by == "mass" else (0.05, 0.5))
        if not (0 < lo < hi <= 1) or n_radii < 3:
            raise ValueError(
                f"r_range/n_radii: expected 0 < lo < hi <= 1 and n_radii >= 3, got {r_range}, {n_radii}"
            )
        if range_by == "mass":  # radius of the ball holding a fraction of all nodes, median over centres
            k_lo, k_hi = max(1, math.ceil(lo * n) - 1), max(1, math.ceil(hi * n) - 1)
            r_lo, r_hi = float(np.median(dist[:, k_lo])), float(np.median(dist[:, k_hi]))
            if not (0 < r_lo < r_hi < math.inf):
                raise ValueError(
                    f"r_range: the mass fractions {lo, hi} give radii {r_lo, r_hi}; the graph may be "
                    "disconnected or too small: pass radii=... or range_by='diameter'"
                )
            radii = np.geomspace(r_lo, r_hi, int(n_radii))
        else:
            radii = d * np.geomspace(lo, hi, int(n_radii))
    radii = np.asarray(radii, dtype=np.float64)
    if radii.ndim != 1 or len(radii) < 3 or radii.min() <= 0 or np.any(np.diff(radii) <= 0):
        raise ValueError(f"radii: expected >= 3 increasing positive radii, got {radii!r}")
    mass = np.stack([np.searchsorted(row, radii, side="right") for row in dist])  # (C, R), >= 1
    log_p = np.log(mass / n)  # ln(M / M0)
    # ln Z_q(r) = ln mean_c exp((q - 1) ln p_c(r)), stably (log-sum-exp over centres)
    e = (q[:, None, None] - 1.0) * log_p[None]  # (Q, C, R)
    top = e.max(axis=1, keepdims=True)
    log_z = (top + np.log(np.exp(e - top).mean(axis=1, keepdims=True)))[:, 0]  # (Q, R)
    x = np.log(radii / d)
    xc = x - x.mean()
    yc = log_z - log_z.mean(axis=1, keepdims=True)
    tau = yc @ xc / (xc @ xc)
    ss = (yc**2).sum(axis=1)
    resid = ((yc - tau[:, None] * xc) ** 2).sum(axis=1)
    r2 = np.where(ss > 0, 1.0 - resid / np.where(ss > 0, ss, 1.0), 1.0)
    s = spectrum_from_tau(q, tau)
    return Spectrum(s.q, s.tau, s.alpha, s.f, s.alpha0, s.width, s.dimension, radii, log_z, r2, d)


def one_hop_spectrum(
    net: InteractionNetwork,
    q: Any = DEFAULT_Q,
    *,
    max_length: float = 150.0,
    min_edges: int = 10,
    decimals: int = 0,
) -> Spectrum:
    """The estimator of the authors' code (Neuron_MFA_LLM, ``wnfd_llm``), for comparison.

    Each neuron i with more than ``min_edges`` forward edges of length 1 < l <= ``max_length`` (lengths
    rounded to ``decimals``) is a centre; N_i(r) = 1 + #{forward neighbours with l <= r}; radii = the
    distinct rounded lengths, d the largest. Z_q(r) = sum_i (N_i(r) / N_i(d))^q, tau(q) = slope of
    ln Z_q against ln(r/d); alpha by forward differences, f = q alpha - tau (on q[:-1]). Only one hop
    is counted, and with exponent q (not q - 1) tau(0) = 0, so f peaks near 0, not at D_0."""
    q = _check_q(q)
    if not isinstance(net, InteractionNetwork):
        raise TypeError(f"net: expected an InteractionNetwork, got {type(net).__name__}")
    m = net.lengths.tocsr()
    rows = []
    for i in range(net.n_nodes):
        cols = m.indices[m.indptr[i] : m.indptr[i + 1]]
        vals = m.data[m.indptr[i] : m.indptr[i + 1]][net.layer[cols] == net.layer[i] + 1]
        vals = vals[(vals > 1.0) & (vals <= max_length)]
        if len(vals) > min_edges:
            rows.append(np.round(vals, decimals))
    if not rows:
        raise ValueError(
            f"net: no neuron has more than min_edges={min_edges} forward edges of length in (1, {max_length}]"
        )
    radii = np.unique(np.concatenate(rows))
    if len(radii) < 3:
        raise ValueError(f"net: the rounded edge lengths give {len(radii)} radii; need >= 3")
    mass = 1.0 + np.stack([np.searchsorted(np.sort(v), radii, side="right") for v in rows])  # (C, R)
    p = mass / mass[:, -1:]
    log_z = np.log((p[None] ** q[:, None, None]).sum(axis=1))  # (Q, R)
    x = np.log(radii / radii[-1])
    xc = x - x.mean()
    tau = (log_z - log_z.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    alpha = np.diff(tau) / np.diff(q)
    f = q[:-1] * alpha - tau[:-1]
    return Spectrum(
        q=q[:-1],
        tau=tau[:-1],
        alpha=alpha,
        f=f,
        alpha0=float(alpha[int(np.argmax(f))]),
        width=float(alpha.max() - alpha.min()),
        dimension=float(-np.interp(0.0, q, tau)),
        radii=radii,
        log_z=log_z,
        diameter=float(radii[-1]),
    )


def emergence_degree(alpha0: Any, width: Any) -> np.ndarray:
    """E_t = (w_t / w_0) ln(alpha0_0 / alpha0_t) over checkpoints t (the first is the reference)."""
    a = np.asarray(alpha0, dtype=np.float64)
    w = np.asarray(width, dtype=np.float64)
    if a.ndim != 1 or a.shape != w.shape or len(a) < 1:
        raise ValueError(f"alpha0, width: expected 1-D arrays of equal length, got {a.shape} and {w.shape}")
    if np.any(a <= 0) or w[0] <= 0:
        raise ValueError("alpha0 must be > 0 at every checkpoint and width > 0 at the first")
    return w / w[0] * np.log(a[0] / a)


@dataclass(frozen=True)
class NeuroMFA:
    """Per-subgraph results of :func:`neuromfa`: ``alpha0``, ``width``, ``dimension``, ``r2_min`` (the
    worst R^2 of the log-log fits over q; NaN for the one-hop estimator) (S,), ``tau`` (S, Q); ``mean``
    is the spectrum of the mean tau; the means of alpha0 and width over subgraphs."""

    q: np.ndarray
    tau: np.ndarray
    alpha0: np.ndarray
    width: np.ndarray
    dimension: np.ndarray
    mean: Spectrum
    r2_min: np.ndarray

    @property
    def alpha0_mean(self) -> float:
        return float(self.alpha0.mean())

    @property
    def width_mean(self) -> float:
        return float(self.width.mean())


def neuromfa(
    weights: Sequence[Any],
    q: Any = DEFAULT_Q,
    *,
    samples: int = 8,
    per_layer: int | None = 64,
    centres: int = 20,
    eps: float = 0.0,
    seed: int = 0,
    estimator: str = "sandbox",
    **kwargs: Any,
) -> NeuroMFA:
    """NeuroMFA of one checkpoint: ``samples`` sampled NINs (``per_layer`` neurons per layer), each
    analysed by :func:`sandbox_spectrum` with ``centres`` centres (or, with ``estimator="one-hop"``,
    by :func:`one_hop_spectrum`, the authors' code). Subgraph s draws its neurons and centres from
    ``seed + s``, so the same ``seed`` picks the same neurons at every checkpoint."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples: expected an int >= 1, got {samples!r}")
    if estimator not in ("sandbox", "one-hop"):
        raise ValueError(f"estimator: expected 'sandbox' or 'one-hop', got {estimator!r}")
    specs = []
    for s in range(int(samples)):
        rng = np.random.default_rng(int(seed) + s)
        net = interaction_network(weights, eps=eps, sample=per_layer, seed=rng)
        if estimator == "sandbox":
            specs.append(sandbox_spectrum(net, q, centres=centres, seed=rng, **kwargs))
        else:
            specs.append(one_hop_spectrum(net, q, **kwargs))
    tau = np.stack([s.tau for s in specs])
    return NeuroMFA(
        q=specs[0].q,
        tau=tau,
        alpha0=np.array([s.alpha0 for s in specs]),
        width=np.array([s.width for s in specs]),
        dimension=np.array([s.dimension for s in specs]),
        mean=spectrum_from_tau(specs[0].q, tau.mean(axis=0)),
        r2_min=np.array([float(s.r2.min()) if s.r2 is not None else math.nan for s in specs]),
    )
