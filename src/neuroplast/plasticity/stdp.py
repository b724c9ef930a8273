"""Pair-based spike-timing-dependent plasticity (STDP) with traces, a teacher signal, and homeostasis
(adaptive threshold, synaptic scaling). Discrete time, step ``dt``; batched over a leading batch axis.

Pair rule (Bi & Poo 1998; trace form of Morrison, Diesmann & Gerstner 2008), as used by
Davies et al., arXiv:2312.02659 (SpiNNaker ``SpikePairRule``) and Casanueva-Morato et al.,
arXiv:2310.05868 (tau+- = 3 ms, A+- = w_max = 6)::

    dw = +A+ f+(w) exp(-dt_s / tau+)    for dt_s = t_post - t_pre >= 0 (each pre/post spike pair)
    dw = -A- f-(w) exp(+dt_s / tau-)    for dt_s < 0 (post before pre)

computed online with one trace per neuron (``pairing="all"``: every pair counts; ``"nearest"``:
the trace is set to 1 instead of incremented, so only the latest spike counts)::

    x[t] = x[t-1] exp(-dt / tau+) + pre[t]          (presynaptic trace)
    y[t] = y[t-1] exp(-dt / tau-) + post[t]         (postsynaptic trace)
    LTD on each pre spike:  dw_ji -= A- f-(w_ji) pre_i[t] y_j[t-1] exp(-dt/tau-)  (y before this post)
    LTP on each post spike: dw_ji += A+ f+(w_ji) post_j[t] x_i[t]                 (x with this pre)

so a pre and a post spike in the same step count as a causal pair (dt_s = 0, potentiation by A+):
a spike that arrives within a step is taken to have caused a post spike in that step. The LTD of a
step is applied before its LTP, so a caller that transmits between the two (see
:func:`stdp_pre_update` / :func:`stdp_post_update`) uses the depressed weight ("update, then
transmit", as SpiNNaker's plastic synapses do).

Weight dependence: ``"additive"`` f+ = f- = 1 (hard bounds by clipping, PyNN
``AdditiveWeightDependence``), ``"multiplicative"`` f+ = w_max - w, f- = w - w_min (soft bounds,
PyNN ``MultiplicativeWeightDependence``; van Rossum et al. 2000). Weights are clipped to
``[w_min, w_max]`` after every update in both cases.

Teacher (supervised STDP): ``teacher`` spikes of the postsynaptic neurons are used by the rule in
place of (``teacher_mode="replace"``) or in addition to (``"or"``) the actual post spikes; to make
a neuron *fire* under supervision, inject a teacher current into it instead (the study of
arXiv:2312.02659 does that).

Weights are ``(n_post, n_pre)`` (the ``nn.Linear.weight`` layout) shared over the batch, the
batch's updates summed (``reduce="sum"``) or averaged (``"mean"``); or ``(B, n_post, n_pre)``, one
weight matrix per sample. Homeostasis: :class:`AdaptiveThreshold` and :class:`SynapticScaling`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "STDPParams",
    "STDPState",
    "stdp_init_state",
    "stdp_decay",
    "stdp_pre_update",
    "stdp_post_update",
    "stdp_step",
    "pair_weight_change",
    "STDP",
    "AdaptiveThreshold",
    "SynapticScaling",
    "WEIGHT_DEPENDENCES",
    "PAIRINGS",
]

WEIGHT_DEPENDENCES = ("additive", "multiplicative")
PAIRINGS = ("all", "nearest")
_REDUCES = ("sum", "mean")
_TEACHER_MODES = ("or", "replace")


class STDPParams(NamedTuple):
    """Parameters of the pair rule (times in the unit of ``dt``, usually ms)."""

    a_plus: float = 0.01
    a_minus: float = 0.01
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    dt: float = 1.0
    w_min: float = 0.0
    w_max: float = 1.0
    weight_dependence: str = "additive"
    pairing: str = "all"
    reduce: str = "sum"


_DEFAULT_STDP = STDPParams()


class STDPState(NamedTuple):
    """Traces: ``pre_trace`` (B, n_pre) and ``post_trace`` (B, n_post)."""

    pre_trace: Tensor
    post_trace: Tensor


def _check_params(p: STDPParams) -> None:
    for name in ("a_plus", "a_minus"):
        v = getattr(p, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    for name in ("tau_plus", "tau_minus", "dt"):
        v = getattr(p, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
    if not (isinstance(p.w_min, (int, float)) and isinstance(p.w_max, (int, float)) and p.w_min <= p.w_max):
        raise ValueError(f"w_min, w_max: expected numbers with w_min <= w_max, got {p.w_min!r}, {p.w_max!r}")
    if p.weight_dependence not in WEIGHT_DEPENDENCES:
        raise ValueError(
            f"weight_dependence: expected one of {WEIGHT_DEPENDENCES}, got {p.weight_dependence!r}"
        )
    if p.pairing not in PAIRINGS:
        raise ValueError(f"pairing: expected one of {PAIRINGS}, got {p.pairing!r}")
    if p.reduce not in _REDUCES:
        raise ValueError(f"reduce: expected one of {_REDUCES}, got {p.reduce!r}")


def pair_weight_change(delta_t: Tensor | float, params: STDPParams = _DEFAULT_STDP) -> Tensor:
    """The pair rule's window for one isolated pre/post pair (additive form, bounds not binding):
    ``A+ exp(-dt_s/tau+)`` for ``dt_s = t_post - t_pre >= 0``, else
    ``-A- exp(dt_s/tau-)``. The closed form the online rule reproduces for an isolated pair."""
    d = torch.as_tensor(delta_t, dtype=torch.get_default_dtype())
    return torch.where(
        d >= 0,
        params.a_plus * torch.exp(-d / params.tau_plus),
        -params.a_minus * torch.exp(d / params.tau_minus),
    )


def stdp_init_state(
    batch_size: int,
    n_pre: int,
    n_post: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> STDPState:
    """Zero traces for a batch of ``batch_size``."""
    return STDPState(
        torch.zeros(batch_size, n_pre, dtype=dtype, device=device),
        torch.zeros(batch_size, n_post, dtype=dtype, device=device),
    )


def _check_spikes(name: str, s: Tensor, trace: Tensor) -> None:
    if not isinstance(s, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of spikes (B, N), got {type(s).__name__}")
    if s.dim() != 2:
        raise ValueError(
            f"{name}: expected spikes of shape (B, N) for one time step, got shape {tuple(s.shape)}; "
            "loop over the time axis of a time-first [T, B, N] tensor"
        )
    if s.shape[0] != trace.shape[0]:
        raise ValueError(
            f"{name}: batch size {s.shape[0]} does not match the traces' batch size "
            f"{trace.shape[0]}; reset the state (STDP.reset()) when the batch size changes"
        )
    if s.shape[1] != trace.shape[1]:
        raise ValueError(f"{name}: expected {trace.shape[1]} neurons on the last axis, got {s.shape[1]}")


def _check_weight(weight: Tensor, n_post: int, n_pre: int, batch: int) -> None:
    ok2 = weight.dim() == 2 and tuple(weight.shape) == (n_post, n_pre)
    ok3 = weight.dim() == 3 and tuple(weight.shape) == (batch, n_post, n_pre)
    if not (ok2 or ok3):
        raise ValueError(
            f"weight: expected shape (n_post, n_pre) = ({n_post}, {n_pre}) or (B, n_post, n_pre) = "
            f"({batch}, {n_post}, {n_pre}), got {tuple(weight.shape)}"
        )


def _apply(weight: Tensor, outer: Tensor, sign: float, amp: float, p: STDPParams, bound: float) -> None:
    """weight += sign * amp * f(w) * outer  (outer: (B, n_post, n_pre)), reduced over the batch, clipped."""
    if amp == 0.0:
        return
    if weight.dim() == 2:
        outer = outer.sum(0) if p.reduce == "sum" else outer.mean(0)
    d = outer * amp
    if p.weight_dependence == "multiplicative":
        d = d * (bound - weight).abs()
    weight.add_(sign * d).clamp_(p.w_min, p.w_max)


def stdp_decay(state: STDPState, params: STDPParams) -> STDPState:
    """Decay both traces by one step: ``x *= exp(-dt/tau+)``, ``y *= exp(-dt/tau-)``."""
    return STDPState(
        state.pre_trace * math.exp(-params.dt / params.tau_plus),
        state.post_trace * math.exp(-params.dt / params.tau_minus),
    )


@torch.no_grad()
def stdp_pre_update(
    weight: Tensor, pre: Tensor, state: STDPState, params: STDPParams = _DEFAULT_STDP
) -> STDPState:
    """LTD for this step's (already decayed) traces and pre spikes, in place on ``weight``; returns
    the state with the pre trace incremented (or set, for nearest pairing)."""
    _check_params(params)
    _check_spikes("pre", pre, state.pre_trace)
    _check_weight(weight, state.post_trace.shape[1], state.pre_trace.shape[1], pre.shape[0])
    pre = pre.to(weight.dtype)
    outer = state.post_trace.unsqueeze(2) * pre.unsqueeze(1)  # (B, n_post, n_pre)
    _apply(weight, outer, -1.0, params.a_minus, params, params.w_min)
    x = (
        torch.where(pre > 0, torch.ones_like(pre), state.pre_trace)
        if params.pairing == "nearest"
        else state.pre_trace + pre
    )
    return STDPState(x, state.post_trace)


@torch.no_grad()
def stdp_post_update(
    weight: Tensor,
    post: Tensor,
    state: STDPState,
    params: STDPParams = _DEFAULT_STDP,
    teacher: Tensor | None = None,
    teacher_mode: str = "or",
) -> STDPState:
    """LTP for this step's post spikes (or teacher spikes) against the pre trace, in place on
    ``weight``; returns the state with the post trace incremented (or set)."""
    _check_params(params)
    _check_spikes("post", post, state.post_trace)
    _check_weight(weight, state.post_trace.shape[1], state.pre_trace.shape[1], post.shape[0])
    post = post.to(weight.dtype)
    if teacher is not None:
        _check_spikes("teacher", teacher, state.post_trace)
        if teacher_mode not in _TEACHER_MODES:
            raise ValueError(f"teacher_mode: expected one of {_TEACHER_MODES}, got {teacher_mode!r}")
        t = teacher.to(weight.dtype)
        post = t if teacher_mode == "replace" else torch.maximum(post, t)
    outer = post.unsqueeze(2) * state.pre_trace.unsqueeze(1)  # (B, n_post, n_pre)
    _apply(weight, outer, 1.0, params.a_plus, params, params.w_max)
    y = (
        torch.where(post > 0, torch.ones_like(post), state.post_trace)
        if params.pairing == "nearest"
        else state.post_trace + post
    )
    return STDPState(state.pre_trace, y)


@torch.no_grad()
def stdp_step(
    weight: Tensor,
    pre: Tensor,
    post: Tensor,
    state: STDPState | None,
    params: STDPParams = _DEFAULT_STDP,
    teacher: Tensor | None = None,
    teacher_mode: str = "or",
) -> STDPState:
    """One step of the pair rule on ``weight`` (in place): decay, LTD on pre spikes, LTP on post
    (or teacher) spikes. ``pre`` (B, n_pre), ``post`` (B, n_post); ``state=None`` starts from zero
    traces. Returns the new state."""
    if not isinstance(weight, Tensor):
        raise TypeError(f"weight: expected a torch.Tensor, got {type(weight).__name__}")
    if state is None:
        if not (isinstance(pre, Tensor) and isinstance(post, Tensor) and pre.dim() == 2 and post.dim() == 2):
            raise ValueError(
                "pre, post: expected spikes of shape (B, n_pre) and (B, n_post) for one time step"
            )
        state = stdp_init_state(
            pre.shape[0], pre.shape[1], post.shape[1], dtype=weight.dtype, device=weight.device
        )
    _check_params(params)
    state = stdp_decay(state, params)
    state = stdp_pre_update(weight, pre, state, params)
    return stdp_post_update(weight, post, state, params, teacher, teacher_mode)


class STDP(nn.Module):
    """Pair-based STDP as a small object with an explicit :meth:`step` (module docstring for the
    equations; arXiv:2312.02659, arXiv:2310.05868).

    ``step(weight, pre, post, teacher=None)`` updates any weight tensor in place (e.g. a spiking
    layer's ``linear.weight``; no gradient is recorded) from one step of spikes ``pre`` (B, n_pre)
    and ``post`` (B, n_post). The traces live in buffers (``state_dict`` round trip); they are
    (re)created with zeros on the first step and by :meth:`reset`. A step with a different batch
    size than the traces raises ValueError (call ``reset()`` between batches of different size).
    """

    def __init__(
        self,
        n_pre: int,
        n_post: int,
        *,
        a_plus: float = 0.01,
        a_minus: float = 0.01,
        tau_plus: float = 20.0,
        tau_minus: float = 20.0,
        dt: float = 1.0,
        w_min: float = 0.0,
        w_max: float = 1.0,
        weight_dependence: str = "additive",
        pairing: str = "all",
        reduce: str = "sum",
        teacher_mode: str = "or",
    ) -> None:
        super().__init__()
        for name, v in (("n_pre", n_pre), ("n_post", n_post)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        if teacher_mode not in _TEACHER_MODES:
            raise ValueError(f"teacher_mode: expected one of {_TEACHER_MODES}, got {teacher_mode!r}")
        self.n_pre, self.n_post = n_pre, n_post
        self.params = STDPParams(
            float(a_plus),
            float(a_minus),
            float(tau_plus),
            float(tau_minus),
            float(dt),
            float(w_min),
            float(w_max),
            weight_dependence,
            pairing,
            reduce,
        )
        _check_params(self.params)
        self.teacher_mode = teacher_mode
        self.register_buffer("pre_trace", torch.zeros(0, n_pre))
        self.register_buffer("post_trace", torch.zeros(0, n_post))

    @property
    def state(self) -> STDPState:
        return STDPState(self.pre_trace, self.post_trace)

    def reset(self, batch_size: int | None = None) -> None:
        """Zero the traces (for ``batch_size`` samples; ``None``: re-created on the next step)."""
        b = 0 if batch_size is None else int(batch_size)
        self.pre_trace = torch.zeros(b, self.n_pre, dtype=self.pre_trace.dtype, device=self.pre_trace.device)
        self.post_trace = torch.zeros(
            b, self.n_post, dtype=self.post_trace.dtype, device=self.post_trace.device
        )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        for name in ("pre_trace", "post_trace"):  # traces of any batch size load
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def step(self, weight: Tensor, pre: Tensor, post: Tensor, teacher: Tensor | None = None) -> Tensor:
        """Decay the traces, apply LTD (pre spikes) then LTP (post or teacher spikes) to ``weight`` in
        place; returns ``weight``."""
        if isinstance(pre, Tensor) and pre.dim() == 2 and self.pre_trace.shape[0] == 0:
            self.pre_trace = torch.zeros(pre.shape[0], self.n_pre, dtype=weight.dtype, device=weight.device)
            self.post_trace = torch.zeros(pre.shape[0], self.n_post, dtype=weight.dtype, device=weight.device)
        st = stdp_step(weight, pre, post, self.state, self.params, teacher, self.teacher_mode)
        self.pre_trace, self.post_trace = st.pre_trace, st.post_trace
        return weight

    def extra_repr(self) -> str:
        p = self.params
        return (
            f"n_pre={self.n_pre}, n_post={self.n_post}, a_plus={p.a_plus:g}, a_minus={p.a_minus:g}, "
            f"tau_plus={p.tau_plus:g}, tau_minus={p.tau_minus:g}, w=[{p.w_min:g}, {p.w_max:g}], "
            f"{p.weight_dependence}, pairing={p.pairing!r}"
        )


class AdaptiveThreshold(nn.Module):
    """Homeostatic adaptive threshold (intrinsic plasticity), per neuron::

        theta[t+1] = theta_0 + (theta[t] - theta_0) exp(-dt / tau_theta) + alpha (s[t] - rho)

    A spike raises the threshold by ``alpha`` and it relaxes back to ``theta_0`` with time constant
    ``tau_theta`` (``None``: no relaxation); with a target rate ``rho`` > 0 the threshold falls by
    ``alpha * rho`` every step, so it settles where the neuron fires at rate ``rho`` (spike-triggered
    form: Diehl & Cook 2015, doi:10.3389/fncom.2015.00099; target-rate form: the homeostatic
    threshold of arXiv:2312.02659 is not given in retrievable form, this is our choice). Optional
    bounds ``theta_min``/``theta_max``. State ``theta`` (n,) or (B, n) lives in a buffer.
    """

    def __init__(
        self,
        n: int,
        *,
        theta_0: float = 1.0,
        alpha: float = 0.05,
        tau_theta: float | None = None,
        rho: float = 0.0,
        dt: float = 1.0,
        theta_min: float | None = None,
        theta_max: float | None = None,
    ) -> None:
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n: expected a positive int, got {n!r}")
        if tau_theta is not None and not tau_theta > 0:
            raise ValueError(f"tau_theta: expected a positive number or None, got {tau_theta!r}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho: expected a target rate in [0, 1] spikes per step, got {rho!r}")
        self.n, self.theta_0, self.alpha, self.tau_theta = n, float(theta_0), float(alpha), tau_theta
        self.rho, self.dt, self.theta_min, self.theta_max = float(rho), float(dt), theta_min, theta_max
        self.register_buffer("theta", torch.full((n,), float(theta_0)))

    def reset(self) -> None:
        self.theta = torch.full((self.n,), self.theta_0, dtype=self.theta.dtype, device=self.theta.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        key = prefix + "theta"
        if key in state_dict:
            self.theta = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def step(self, spikes: Tensor) -> Tensor:
        """Advance one step with spikes (n,) or (B, n); returns the new threshold."""
        if not isinstance(spikes, Tensor) or spikes.shape[-1] != self.n or spikes.dim() not in (1, 2):
            raise ValueError(
                f"spikes: expected shape ({self.n},) or (B, {self.n}), got "
                f"{tuple(getattr(spikes, 'shape', ()))}"
            )
        th = self.theta
        if spikes.dim() == 2 and th.dim() == 1:
            th = th.expand(spikes.shape[0], self.n).clone()
        elif spikes.dim() == 2 and th.shape[0] != spikes.shape[0]:
            raise ValueError(
                f"spikes: batch size {spikes.shape[0]} does not match the threshold's batch size "
                f"{th.shape[0]}; call reset()"
            )
        decay = 1.0 if self.tau_theta is None else math.exp(-self.dt / self.tau_theta)
        th = self.theta_0 + (th - self.theta_0) * decay + self.alpha * (spikes.to(th.dtype) - self.rho)
        if self.theta_min is not None or self.theta_max is not None:
            th = th.clamp(self.theta_min, self.theta_max)
        self.theta = th
        return th


class SynapticScaling(nn.Module):
    """Multiplicative synaptic scaling (Turrigiano et al. 1998): each postsynaptic neuron's
    afferent weights are scaled together towards a target total ``W*``::

        w_ji <- w_ji * (1 + eta (W* / sum_i w_ji - 1))      (eta = 1: exact normalisation)

    Relative weights, hence what a neuron has learned, are kept; only its total drive is held at
    ``W*`` (the homeostatic factor of arXiv:2312.02659 in our reading: with threshold ``theta``, a
    neuron normalised to ``W* = theta / h`` fires for any input that carries a fraction ``> h`` of
    its afferent weight). Rows with zero total are left alone. ``weight``: (n_post, n_pre) or
    (B, n_post, n_pre).
    """

    def __init__(self, target: float, *, rate: float = 1.0, w_max: float | None = None) -> None:
        super().__init__()
        if not (isinstance(target, (int, float)) and target > 0):
            raise ValueError(f"target: expected a positive total weight, got {target!r}")
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"rate: expected eta in (0, 1], got {rate!r}")
        self.target, self.rate, self.w_max = float(target), float(rate), w_max

    @torch.no_grad()
    def step(self, weight: Tensor) -> Tensor:
        """Scale ``weight`` in place; returns it."""
        if not isinstance(weight, Tensor) or weight.dim() not in (2, 3):
            raise ValueError(
                f"weight: expected (n_post, n_pre) or (B, n_post, n_pre), got "
                f"{tuple(getattr(weight, 'shape', ()))}"
            )
        total = weight.sum(-1, keepdim=True)
        factor = torch.where(
            total > 0, 1.0 + self.rate * (self.target / total.clamp_min(1e-30) - 1.0), torch.ones_like(total)
        )
        weight.mul_(factor)
        if self.w_max is not None:
            weight.clamp_(max=self.w_max)
        return weight

    def extra_repr(self) -> str:
        return f"target={self.target:g}, rate={self.rate:g}"
