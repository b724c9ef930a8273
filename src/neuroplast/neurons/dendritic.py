"""Active dendrites: the false-match theory of sparse codes and the layers of a dendritic network.

Theory (Ahmad & Hawkins 2016, arXiv:1601.00720). A population of ``n`` cells has ``a`` active cells
(a sparse binary pattern). A dendritic segment with ``s`` synapses on distinct cells fires (NMDA spike)
when at least ``theta`` of its synapses see an active cell. For a uniformly random active pattern the
overlap ``b`` is hypergeometric and the false-match probability is

    P = sum_{b=theta}^{s} C(s, b) C(n - s, a - b) / C(n, a).

Layers (Iyer et al. 2022, arXiv:2201.00042): :class:`DendriticLayer` gates each unit of a linear layer
by its dendritic segment of largest absolute activation given a context vector; :class:`KWinners` keeps
the k most active units with duty-cycle boosting.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "DendriticLayer",
    "KWinners",
    "MatchEstimate",
    "false_match_probability",
    "log_false_match_probability",
    "monte_carlo_false_match",
    "monte_carlo_union_false_match",
    "union_false_match_probability",
    "union_size_distribution",
]


# -- theory ------------------------------------------------------------------------------------------
def _check_int(name: str, value: object, low: int, high: int | None = None, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}: expected an int {rng}{hint}, got {value}")
    return value


def _check_nast(n: int, a: int, s: int, theta: int) -> None:
    _check_int("n", n, 1)
    _check_int("a", a, 0, n, " (active cells cannot exceed n)")
    _check_int("s", s, 1, n, " (synapses on distinct cells, at most n)")
    _check_int("theta", theta, 1, s, " (the NMDA threshold counts synapses: 1 <= theta <= s)")


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def log_false_match_probability(n: int, a: int, s: int, theta: int) -> float:
    """Natural log of the false-match probability (arXiv:1601.00720, eq. 3); ``-inf`` when it is 0.

    Every term ``C(s,b) C(n-s,a-b) / C(n,a)`` is formed with ``lgamma`` and the sum taken with a
    log-sum-exp, so n = 10^4 .. 10^6 is stable (the plain binomials overflow a float at n ~ 1,030).
    """
    _check_nast(n, a, s, theta)
    lo, hi = max(theta, a - (n - s)), min(s, a)
    if lo > hi:
        return -math.inf
    denom = _log_comb(n, a)
    logs = [_log_comb(s, b) + _log_comb(n - s, a - b) - denom for b in range(lo, hi + 1)]
    top = max(logs)
    return top + math.log(math.fsum(math.exp(v - top) for v in logs))


def false_match_probability(n: int, a: int, s: int, theta: int) -> float:
    """P(overlap >= theta) of a random a-of-n pattern with a segment of s synapses (arXiv:1601.00720).

    P = sum_{b=theta}^{s} C(s, b) C(n - s, a - b) / C(n, a), computed in log space.
    Example: n=10000, a=300, s=24, theta=12 gives 8.3758e-13.
    """
    return math.exp(log_false_match_probability(n, a, s, theta))


def union_size_distribution(n: int, s: int, m: int) -> torch.Tensor:
    """Distribution of the number x of distinct cells in the union of ``m`` independent random s-subsets
    of n cells: a float64 tensor ``p`` with ``p[x] = P(X = x)``, x = 0 .. n.

    Exact recursion over patterns: from a union of size x, a new s-subset with j new cells gives size
    x + j with probability C(n - x, j) C(x, s - j) / C(n, s).
    """
    _check_int("n", n, 1)
    _check_int("s", s, 1, n)
    _check_int("m", m, 1)
    p = torch.zeros(n + 1, dtype=torch.float64)
    p[s] = 1.0
    denom = _log_comb(n, s)
    for _ in range(m - 1):
        new = torch.zeros_like(p)
        for x in torch.nonzero(p > 0).flatten().tolist():
            px = float(p[x])
            for j in range(max(0, s - x), min(s, n - x) + 1):
                new[x + j] += px * math.exp(_log_comb(n - x, j) + _log_comb(x, s - j) - denom)
        p = new
    return p


def union_false_match_probability(n: int, a: int, s: int, theta: int, m: int) -> float:
    """False-match probability of a segment that stores the union of ``m`` patterns (union property).

    What is implemented (arXiv:1601.00720, the union property): the segment forms s synapses for each
    of m patterns, on cells drawn at random, so it holds x = |union| <= s m distinct synapses; a random
    a-of-n pattern falsely matches when at least theta of those synapses see an active cell:

        P_union = sum_x P(X = x) * P(n, a, x, theta),

    with P(n, a, x, theta) the single-segment formula and P(X = x) from :func:`union_size_distribution`.
    When s m << n the union rarely overlaps itself and this is the paper's formula with s -> s m.
    """
    _check_nast(n, a, s, theta)
    _check_int("m", m, 1)
    px = union_size_distribution(n, s, m)
    total = 0.0
    for x in torch.nonzero(px > 0).flatten().tolist():
        if x >= theta:
            total += float(px[x]) * false_match_probability(n, a, x, theta)
    return total


class MatchEstimate(tuple):
    """(p, stderr, trials, hits) of a Monte Carlo false-match estimate; binomial stderr sqrt(p(1-p)/N)."""

    __slots__ = ()

    def __new__(cls, p: float, stderr: float, trials: int, hits: int) -> MatchEstimate:
        return super().__new__(cls, (p, stderr, trials, hits))

    p = property(lambda self: self[0])
    stderr = property(lambda self: self[1])
    trials = property(lambda self: self[2])
    hits = property(lambda self: self[3])

    def __repr__(self) -> str:
        return (
            f"MatchEstimate(p={self.p:.6g}, stderr={self.stderr:.3g}, trials={self.trials}, hits={self.hits})"
        )


def _estimate(hits: int, trials: int) -> MatchEstimate:
    p = hits / trials
    return MatchEstimate(p, math.sqrt(max(p * (1.0 - p), 0.0) / trials), trials, hits)


def _overlap_counts_urn(
    n: int, a: int, s: int, trials: int, gen: torch.Generator, chunk: int
) -> torch.Tensor:
    """Histogram (length s+1) of overlaps: s synapses placed one by one on distinct random cells; the
    t-th lands on an active cell with probability (a - hits) / (n - t) (drawing without replacement)."""
    counts = torch.zeros(s + 1, dtype=torch.int64)
    done = 0
    while done < trials:
        c = min(chunk, trials - done)
        hits = torch.zeros(c, dtype=torch.float32)
        for t in range(s):
            u = torch.rand(c, generator=gen)
            hits += (u * (n - t) < (a - hits)).float()  # (c,)
        counts += torch.bincount(hits.long(), minlength=s + 1)
        done += c
    return counts


def _overlap_counts_vectors(
    n: int, a: int, s: int, trials: int, gen: torch.Generator, chunk: int, m: int = 1
) -> torch.Tensor:
    """Histogram of overlaps from explicit binary patterns: a random a-of-n active set and a segment with
    the union of m random s-of-n synapse sets, both drawn as the smallest keys of uniform noise."""
    counts = torch.zeros(s * m + 1, dtype=torch.int64)
    done = 0
    while done < trials:
        c = min(chunk, trials - done)
        active = torch.zeros(c, n, dtype=torch.bool)
        if a > 0:
            active.scatter_(1, torch.rand(c, n, generator=gen).topk(a, dim=1, largest=False).indices, True)
        segment = torch.zeros(c, n, dtype=torch.bool)  # (c, n)
        for _ in range(m):
            segment.scatter_(1, torch.rand(c, n, generator=gen).topk(s, dim=1, largest=False).indices, True)
        overlap = (active & segment).sum(1)  # (c,)
        counts += torch.bincount(overlap, minlength=s * m + 1)
        done += c
    return counts


def _check_mc(trials: int, generator: torch.Generator | None) -> torch.Generator:
    _check_int("trials", trials, 1)
    if generator is None:
        raise ValueError("generator: expected a torch.Generator (Monte Carlo draws need a seed), got None")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    return generator


def monte_carlo_false_match(
    n: int,
    a: int,
    s: int,
    theta: int | list[int],
    trials: int,
    generator: torch.Generator,
    method: str = "urn",
    chunk: int = 1_000_000,
) -> MatchEstimate | list[MatchEstimate]:
    """Monte Carlo estimate of :func:`false_match_probability` with its binomial standard error.

    ``method="urn"``: the s synapses are placed one at a time on distinct random cells (cost O(s) per
    trial, so 10^7 trials are cheap); ``method="vectors"``: explicit random binary patterns of n cells
    (cost O(n) per trial). A list of thetas is estimated from the same draws.
    """
    thetas = [theta] if isinstance(theta, int) and not isinstance(theta, bool) else theta
    if not isinstance(thetas, list | tuple) or not thetas:
        raise TypeError(f"theta: expected an int or a non-empty list of ints, got {theta!r}")
    for t in thetas:
        _check_nast(n, a, s, t)
    gen = _check_mc(trials, generator)
    _check_int("chunk", chunk, 1)
    if method == "urn":
        counts = _overlap_counts_urn(n, a, s, trials, gen, chunk)
    elif method == "vectors":
        counts = _overlap_counts_vectors(n, a, s, trials, gen, max(1, min(chunk, 10**7 // n)))
    else:
        raise ValueError(f"method: expected 'urn' or 'vectors', got {method!r}")
    tail = counts.flip(0).cumsum(0).flip(0)  # tail[b] = #trials with overlap >= b
    out = [_estimate(int(tail[t]), trials) for t in thetas]
    return out[0] if isinstance(theta, int) else out


def monte_carlo_union_false_match(
    n: int, a: int, s: int, theta: int, m: int, trials: int, generator: torch.Generator, chunk: int = 20_000
) -> MatchEstimate:
    """Monte Carlo estimate of :func:`union_false_match_probability` from explicit binary patterns."""
    _check_nast(n, a, s, theta)
    _check_int("m", m, 1)
    gen = _check_mc(trials, generator)
    counts = _overlap_counts_vectors(n, a, s, trials, gen, max(1, min(chunk, 10**7 // (n * m))), m=m)
    return _estimate(int(counts[theta:].sum()), trials)


# -- layers ------------------------------------------------------------------------------------------
class DendriticLayer(nn.Module):
    """Linear layer whose units are gated by active dendritic segments (arXiv:2201.00042).

    y_i = (W x + b)_i * sigmoid(d*_i),   d*_i = d_{i,j*},  j* = argmax_j |d_{i,j}|,  d_{i,j} = u_{i,j} . c

    with ``num_segments`` segment weight vectors u_{i,j} of size ``context_dim`` per output unit
    (absolute-max gating: a strongly negative segment can silence the unit). ``weight_sparsity`` > 0
    fixes a random mask of the feed-forward weights (buffer ``weight_mask``; masked weights stay zero
    in the forward pass and get zero gradient). Call as ``layer(x, context)`` with x of shape
    (..., in_features) and context of shape (..., context_dim).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_segments: int,
        context_dim: int,
        weight_sparsity: float = 0.0,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("out_features", out_features),
            ("num_segments", num_segments),
            ("context_dim", context_dim),
        ):
            _check_int(name, value, 1)
        if not isinstance(weight_sparsity, int | float) or not 0.0 <= weight_sparsity < 1.0:
            raise ValueError(f"weight_sparsity: expected a fraction in [0, 1), got {weight_sparsity!r}")
        self.in_features, self.out_features = in_features, out_features
        self.num_segments, self.context_dim = num_segments, context_dim
        self.weight_sparsity = float(weight_sparsity)
        bound = 1.0 / math.sqrt(in_features)
        w = (torch.rand(out_features, in_features, generator=generator) * 2 - 1) * bound
        self.weight = nn.Parameter(w)
        if bias:
            self.bias = nn.Parameter((torch.rand(out_features, generator=generator) * 2 - 1) * bound)
        else:
            self.register_parameter("bias", None)
        sbound = 1.0 / math.sqrt(context_dim)
        u = (torch.rand(out_features, num_segments, context_dim, generator=generator) * 2 - 1) * sbound
        self.segments = nn.Parameter(u)  # (out, segments, context)
        if self.weight_sparsity > 0:
            # exactly round(sparsity * in) zeros per unit, at random places
            zeros = round(self.weight_sparsity * in_features)
            keys = torch.rand(out_features, in_features, generator=generator)
            mask = torch.ones(out_features, in_features)
            if zeros > 0:
                mask.scatter_(1, keys.topk(zeros, dim=1).indices, 0.0)
            self.register_buffer("weight_mask", mask)
            with torch.no_grad():
                self.weight.mul_(mask)
        else:
            self.register_buffer("weight_mask", None)

    def segment_activations(self, context: torch.Tensor) -> torch.Tensor:
        """d = u . c for every unit and segment: (..., context_dim) -> (..., out_features, num_segments)."""
        if not isinstance(context, torch.Tensor):
            raise TypeError(f"context: expected a tensor, got {type(context).__name__}")
        if context.dim() == 0 or context.shape[-1] != self.context_dim:
            raise ValueError(
                f"context: expected last dimension context_dim={self.context_dim}, "
                f"got shape {tuple(context.shape)}"
            )
        return torch.einsum("...c,osc->...os", context, self.segments)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[-1] != self.in_features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected last dimension in_features={self.in_features}, got {shape}")
        d = self.segment_activations(context)  # (..., out, segments)
        if d.shape[:-2] != x.shape[:-1]:
            raise ValueError(
                f"context: batch shape {tuple(d.shape[:-2])} does not match "
                f"x's batch shape {tuple(x.shape[:-1])}"
            )
        winner = d.abs().argmax(-1, keepdim=True)  # (..., out, 1)
        d_star = d.gather(-1, winner).squeeze(-1)  # (..., out)
        w = self.weight if self.weight_mask is None else self.weight * self.weight_mask
        return F.linear(x, w, self.bias) * torch.sigmoid(d_star)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"num_segments={self.num_segments}, context_dim={self.context_dim}, "
            f"weight_sparsity={self.weight_sparsity}"
        )


class KWinners(nn.Module):
    """k-winners-take-all with duty-cycle boosting (arXiv:2201.00042; Ahmad & Scheinkman 2019).

    In training, units are ranked by x_i * b_i with boost b_i = exp(boost_strength * (k/N - duty_i)) and
    the k winners pass x_i (the rest give 0); the duty cycle (buffer) is a running average of how often
    each unit wins: duty <- (duty * (T - B) + wins) / T with T = min(duty_cycle_period, samples seen).
    In eval no boosting and no update. ``update_boost_strength()`` (call once per epoch) multiplies the
    boost strength by ``boost_strength_factor``. Units lie on the last axis.
    """

    def __init__(
        self,
        num_units: int,
        k: int | None = None,
        percent_on: float | None = None,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
    ) -> None:
        super().__init__()
        _check_int("num_units", num_units, 1)
        if (k is None) == (percent_on is None):
            raise ValueError(
                f"k, percent_on: give exactly one of them, got k={k!r}, percent_on={percent_on!r}"
            )
        if k is not None:
            k = _check_int("k", k, 1, num_units, f" (at most num_units={num_units})")
        else:
            if not isinstance(percent_on, int | float) or not 0.0 < percent_on <= 1.0:
                raise ValueError(f"percent_on: expected a fraction in (0, 1], got {percent_on!r}")
            k = max(1, round(percent_on * num_units))
        if not isinstance(boost_strength, int | float) or boost_strength < 0:
            raise ValueError(f"boost_strength: expected a number >= 0, got {boost_strength!r}")
        if not isinstance(boost_strength_factor, int | float) or not 0.0 <= boost_strength_factor <= 1.0:
            raise ValueError(
                f"boost_strength_factor: expected a number in [0, 1], got {boost_strength_factor!r}"
            )
        _check_int("duty_cycle_period", duty_cycle_period, 1)
        self.num_units, self.k = num_units, k
        self.boost_strength_factor = float(boost_strength_factor)
        self.duty_cycle_period = duty_cycle_period
        self.register_buffer("duty_cycle", torch.zeros(num_units))
        self.register_buffer("boost_strength", torch.tensor(float(boost_strength)))
        self.register_buffer("learning_iterations", torch.tensor(0, dtype=torch.long))

    def boost_factors(self) -> torch.Tensor:
        """b = exp(boost_strength * (k / N - duty_cycle)), shape (N,)."""
        return torch.exp(self.boost_strength * (self.k / self.num_units - self.duty_cycle))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[-1] != self.num_units:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected last dimension num_units={self.num_units}, got {shape}")
        score = x * self.boost_factors().to(x.dtype) if self.training else x
        idx = score.detach().topk(self.k, dim=-1).indices
        mask = torch.zeros_like(x, dtype=torch.bool).scatter_(-1, idx, True)
        if self.training:
            with torch.no_grad():
                wins = mask.reshape(-1, self.num_units)
                batch = wins.shape[0]
                self.learning_iterations += batch
                period = float(max(min(self.duty_cycle_period, int(self.learning_iterations)), batch))
                new = (self.duty_cycle * (period - batch) + wins.sum(0).to(self.duty_cycle.dtype)) / period
                self.duty_cycle.copy_(new)
        return x * mask

    def update_boost_strength(self) -> None:
        """boost_strength <- boost_strength * boost_strength_factor (once per epoch)."""
        with torch.no_grad():
            self.boost_strength.mul_(self.boost_strength_factor)

    def extra_repr(self) -> str:
        return f"num_units={self.num_units}, k={self.k}, duty_cycle_period={self.duty_cycle_period}"
