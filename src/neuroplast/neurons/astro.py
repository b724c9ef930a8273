"""Astrocyte-modulated spiking units (AM-SU; Shen et al. 2023, arXiv:2312.07625).

A slow astrocyte state ``a`` integrates the spikes of the group of LIF neurons it covers and
modulates their input (tripartite-synapse efficacy) or their threshold. The neurons are split into
``G`` contiguous groups of ``N / G`` neurons along the last axis, one astrocyte per group.

The paper's own AM-SU equations could not be retrieved (searched: the arXiv HTML v2 and mirrors of
the paper, BrainCog-X/Brain-Cog and the first author's public repositories; only the abstract is
reachable and no code of the paper is public), so this module implements the declared stand-in of
``PAPERS.md`` (family C, ``astrosnn``), per step ``t``::

    m[t]   = a_g[t-1]                       for neuron i in group g (astrocyte of the group)
    I[t]   = x[t] * (1 + gamma_g * m[t])    mode="input"      (synaptic efficacy)
    Vth[t] = V_th - gamma_g * m[t]          mode="threshold"  (excitability; I[t] = x[t])
    s[t], v[t] = LIF step(I[t], v[t-1]; beta, Vth[t])       (neuroplast.neurons.spiking.lif_step)
    a_g[t] = lambda_a * a_g[t-1] + (1 - lambda_a) * mean_{i in g} s_i[t]

with ``lambda_a`` slow (``lambda_a >> beta``, default 0.98, i.e. about 50 steps) and ``a[0] = 0``.
Choices where the stand-in is silent (ours): the modulation at step ``t`` uses the astrocyte state
of the previous step, ``a[t-1]`` (the state at ``t`` depends on the spikes at ``t``, so using it
would make the step implicit); ``gamma`` is one learnable value per astrocyte (may become negative:
the astrocyte may also depress); ``lambda_a`` is fixed per astrocyte (optionally learnable,
``lambda_a = sigmoid(w)``); in threshold mode a subtract reset removes the modulated threshold (the
LIF rule with ``reset_by=None``) and nothing keeps ``Vth[t]`` positive. Units are dimensionless
(one step, as in :mod:`neuroplast.neurons.spiking`); ``a`` is a firing rate in [0, 1] for 0/1
spikes. Surrogate gradients flow through ``a`` into ``gamma`` and the inputs (BPTT).

Functional core :func:`astro_lif_step` (NamedTuple state :class:`AstroState`, parameters
:class:`AstroParams`), reference loop :func:`astro_lif_multistep`, thin module :class:`AstroLIF`
(``[T, B, N]`` time first, or one step ``[B, N]``) and :class:`RecurrentAstroLIF`, a recurrent
spiking layer that runs with (``astro=True``) or without the astrocytes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from neuroplast.neurons import surrogate as _surrogate
from neuroplast.neurons.spiking import RESETS, LIFParams, LIFState, lif_step
from neuroplast.neurons.surrogate import Surrogate

__all__ = [
    "AstroState",
    "AstroParams",
    "astro_lif_step",
    "astro_lif_multistep",
    "AstroLIF",
    "RecurrentAstroLIF",
    "MODES",
]

MODES = ("input", "threshold")


class AstroState(NamedTuple):
    """State of astrocyte-modulated LIF neurons: ``v [B, N]`` membrane after reset, ``a [B, G]``
    astrocyte activity (one per group)."""

    v: torch.Tensor
    a: torch.Tensor


class AstroParams(NamedTuple):
    """Parameters of :func:`astro_lif_step`.

    ``lif``: the LIF parameters (beta, V_th, reset, surrogate). ``gamma``: modulation strength,
    a float or a tensor ``(G,)``; ``lambda_a``: astrocyte decay in [0, 1), float or ``(G,)``;
    ``groups``: number of astrocytes ``G`` (must divide ``N``); ``mode``: ``"input"`` or
    ``"threshold"``.
    """

    lif: LIFParams = LIFParams()
    gamma: torch.Tensor | float = 1.0
    lambda_a: torch.Tensor | float = 0.98
    groups: int = 1
    mode: str = "input"


_DEFAULT = AstroParams()


def _check(x: torch.Tensor, state: AstroState | None, p: AstroParams) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point torch.Tensor, got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.dim() != 2:
        raise ValueError(f"x: expected one time step [B, N] (neurons on the last axis), got shape "
                         f"{tuple(x.shape)}; for a sequence [T, B, N] use astro_lif_multistep")
    if p.mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {p.mode!r}")
    if not isinstance(p.groups, int) or p.groups < 1 or x.shape[1] % p.groups:
        raise ValueError(f"groups: expected a positive int dividing the neuron count {x.shape[1]}, "
                         f"got {p.groups!r}")
    if state is not None:
        if not isinstance(state, AstroState):
            raise TypeError(f"state: expected an AstroState or None, got {type(state).__name__}")
        want_v, want_a = tuple(x.shape), (x.shape[0], p.groups)
        if tuple(state.v.shape) != want_v or tuple(state.a.shape) != want_a:
            hint = ""
            if state.v.dim() >= 1 and state.v.shape[0] != x.shape[0]:
                hint = (f" The state has batch size {state.v.shape[0]} but x has batch size {x.shape[0]}:"
                        " pass state=None (or call reset_state()) for a new batch.")
            raise ValueError(f"state: expected v of shape {want_v} and a of shape {want_a}, got "
                             f"{tuple(state.v.shape)} and {tuple(state.a.shape)}.{hint}")


def astro_lif_step(
    x: torch.Tensor, state: AstroState | None, params: AstroParams = _DEFAULT
) -> tuple[torch.Tensor, AstroState]:
    """One step of astrocyte-modulated LIF neurons (equations in the module docstring,
    stand-in for AM-SU of arXiv:2312.07625): ``(spikes [B, N], new_state)``.

    ``x``: input current ``[B, N]``; ``state=None`` starts from ``v = 0, a = 0``.
    """
    _check(x, state, params)
    B, N = x.shape
    G = params.groups
    if state is None:
        a = x.new_zeros(B, G)
        lif_state = None
    else:
        a, lif_state = state.a, LIFState(state.v)
    gamma = torch.as_tensor(params.gamma, dtype=x.dtype, device=x.device)
    lam = torch.as_tensor(params.lambda_a, dtype=x.dtype, device=x.device)
    mod = (gamma * a).repeat_interleave(N // G, dim=1)  # (B, N): gamma_g a_g for each neuron
    if params.mode == "input":
        s, new = lif_step(x * (1.0 + mod), lif_state, params.lif)
    else:
        th = torch.as_tensor(params.lif.threshold, dtype=x.dtype, device=x.device) - mod  # (B, N)
        s, new = lif_step(x, lif_state, params.lif._replace(threshold=th))
    a_new = lam * a + (1.0 - lam) * s.view(B, G, N // G).mean(-1)  # (B, G)
    return s, AstroState(new.v, a_new)


def astro_lif_multistep(
    x: torch.Tensor, state: AstroState | None, params: AstroParams = _DEFAULT
) -> tuple[torch.Tensor, AstroState, torch.Tensor]:
    """Loop of :func:`astro_lif_step` over time-first ``x [T, B, N]``.

    Returns ``(spikes [T, B, N], final_state, astrocyte [T, B, G])``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected a time-first sequence [T, B, N] with T >= 1, got {shape}")
    spikes, astro = [], []
    for t in range(x.shape[0]):
        s, state = astro_lif_step(x[t], state, params)
        spikes.append(s)
        astro.append(state.a)
    assert state is not None
    return torch.stack(spikes), state, torch.stack(astro)


def _decay_value(tau: float, beta: float | None) -> float:
    if beta is None:
        if not isinstance(tau, (int, float)) or not tau > 1:
            raise ValueError(f"tau: expected a number > 1 (beta = 1 - 1/tau), got {tau!r}")
        beta = 1.0 - 1.0 / float(tau)
    if not isinstance(beta, (int, float)) or not 0.0 < beta < 1.0:
        raise ValueError(f"beta: expected a number in (0, 1), got {beta!r}")
    return float(beta)


class AstroLIF(nn.Module):
    """Astrocyte-modulated LIF neurons (module docstring; arXiv:2312.07625 stand-in).

    Args:
        n: number of neurons ``N`` (last input axis).
        groups: number of astrocytes ``G`` (divides ``n``; neurons ``[g N/G, (g+1) N/G)`` share one).
        tau / beta: membrane decay (``beta = 1 - 1/tau``).
        threshold: ``V_th``. reset: ``"subtract" | "zero" | "none"``. surrogate: name or object.
        mode: ``"input"`` (``x (1 + gamma a)``) or ``"threshold"`` (``V_th - gamma a``).
        gamma: initial modulation strength (one per astrocyte, learnable with ``learn_gamma``).
        lambda_a: astrocyte decay in (0, 1) (learnable as ``sigmoid(w)`` with ``learn_lambda``).
        step_mode: ``"multi"`` (``x [T, B, N]``, time first) or ``"single"`` (``x [B, N]``).
        stateful: carry the final state into the next call (default: single-step only).
        return_state: return ``(spikes, state)`` instead of ``spikes``.

    After each call ``astro_`` holds the astrocyte trace (``[T, B, G]`` or ``[B, G]``, no gradient).
    """

    def __init__(
        self,
        n: int,
        groups: int = 1,
        *,
        tau: float = 2.0,
        beta: float | None = None,
        threshold: float = 1.0,
        reset: str = "subtract",
        surrogate: str | Surrogate = "atan",
        mode: str = "input",
        gamma: float = 1.0,
        lambda_a: float = 0.98,
        learn_gamma: bool = True,
        learn_lambda: bool = False,
        step_mode: str = "multi",
        stateful: bool | None = None,
        return_state: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n: expected a positive int, got {n!r}")
        if not isinstance(groups, int) or groups < 1 or n % groups:
            raise ValueError(f"groups: expected a positive int dividing n={n}, got {groups!r}")
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        if reset not in RESETS:
            raise ValueError(f"reset: expected one of {RESETS}, got {reset!r}")
        if step_mode not in ("multi", "single"):
            raise ValueError(f"step_mode: expected 'multi' (x is [T, B, N]) or 'single' (x is [B, N]), "
                             f"got {step_mode!r}")
        if not isinstance(lambda_a, (int, float)) or not 0.0 < lambda_a < 1.0:
            raise ValueError(f"lambda_a: expected a number in (0, 1), got {lambda_a!r}")
        if not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold: expected a float, got {type(threshold).__name__}")
        self.n, self.groups, self.mode, self.reset = n, groups, mode, reset
        self.beta = _decay_value(tau, beta)
        self.threshold = float(threshold)
        self.surrogate = _surrogate.get(surrogate, "surrogate")
        self.step_mode = step_mode
        self.stateful = (step_mode == "single") if stateful is None else bool(stateful)
        self.return_state = bool(return_state)
        g = torch.full((groups,), float(gamma))
        if learn_gamma:
            self.gamma = nn.Parameter(g)
        else:
            self.register_buffer("gamma", g)
        lam = torch.full((groups,), float(lambda_a))
        self.learn_lambda = bool(learn_lambda)
        if learn_lambda:
            self.lambda_logit = nn.Parameter(torch.log(lam) - torch.log1p(-lam))
        else:
            self.register_buffer("lambda_buf", lam)
        self.state: AstroState | None = None
        self.astro_: torch.Tensor | None = None

    @property
    def lambda_a(self) -> torch.Tensor:
        """Astrocyte decay per group ``(G,)``."""
        return torch.sigmoid(self.lambda_logit) if self.learn_lambda else self.lambda_buf

    def params(self) -> AstroParams:
        """The functional parameters this module runs with."""
        lif = LIFParams(beta=self.beta, threshold=self.threshold, reset=self.reset, surrogate=self.surrogate)
        return AstroParams(lif=lif, gamma=self.gamma, lambda_a=self.lambda_a, groups=self.groups,
                           mode=self.mode)

    def reset_state(self) -> None:
        """Forget the carried state (between independent batches when stateful)."""
        self.state = None
        self.astro_ = None

    def _check_input(self, x: torch.Tensor, state: AstroState | None) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x: expected a floating-point torch.Tensor, got {type(x).__name__}"
                            + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
        want = 3 if self.step_mode == "multi" else 2
        layout = "time-first [T, B, N]" if want == 3 else "one step [B, N]"
        if x.dim() != want or x.shape[-1] != self.n or (want == 3 and x.shape[0] == 0):
            other = "single" if want == 3 else "multi"
            raise ValueError(f"x: expected {layout} with N={self.n} for step_mode={self.step_mode!r}, got "
                             f"shape {tuple(x.shape)} (if this is {'one step' if want == 3 else 'a sequence'}"
                             f", use step_mode={other!r})")
        if state is not None and isinstance(state, AstroState) and state.v.dim() == 2:
            batch = x.shape[-2]
            sb = state.v.shape[0]
            if want == 3 and sb != batch and x.shape[0] == sb:
                raise ValueError(f"state: batch size {sb} matches x.shape[0], not x.shape[1]={batch}: x "
                                 "looks batch-first [B, T, N]; pass time-first x.transpose(0, 1)")

    def forward(
        self, x: torch.Tensor, state: AstroState | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, AstroState]:
        if state is None and self.stateful:
            state = self.state
        self._check_input(x, state)
        p = self.params()
        if self.step_mode == "single":
            s, new = astro_lif_step(x, state, p)
            self.astro_ = new.a.detach()
        else:
            s, new, astro = astro_lif_multistep(x, state, p)
            self.astro_ = astro.detach()
        if self.stateful:
            self.state = new
        return (s, new) if self.return_state else s

    def extra_repr(self) -> str:
        return (f"n={self.n}, groups={self.groups}, mode={self.mode!r}, beta={self.beta:g}, "
                f"threshold={self.threshold:g}, reset={self.reset!r}, step_mode={self.step_mode!r}")


class RecurrentAstroLIF(nn.Module):
    """Recurrent spiking layer ``x [T, B, in] -> spikes [T, B, hidden]``::

        c[t] = W_in x[t] + b + W_rec s[t-1]
        s[t], state = astro_lif_step(c[t], state)     astro=True  (G astrocytes, arXiv:2312.07625)
        s[t], state = lif_step(c[t], state)           astro=False (plain recurrent LIF)

    ``W_in``: ``nn.Linear(in_features, hidden)``; ``W_rec``: ``nn.Linear(hidden, hidden, bias=False)``.
    With ``astro=False`` the layer has no astrocyte and no ``gamma``; with ``astro=True`` it adds
    ``G`` learnable ``gamma`` (and ``G`` decay logits with ``learn_lambda``). Keyword arguments of
    :class:`AstroLIF` (``tau``, ``threshold``, ``mode``, ``gamma``, ``lambda_a``...) pass through.
    ``forward(x, state=None)`` returns ``(spikes [T, B, hidden], final_state)``; ``astro_`` keeps
    the astrocyte trace ``[T, B, G]`` of the last call (``None`` without astrocytes). The state
    carries ``v`` (and ``a``), not the last spikes: the first step of a call has no recurrent input.
    """

    def __init__(self, in_features: int, hidden: int, groups: int = 1, *, astro: bool = True,
                 **cell_kwargs: object) -> None:
        super().__init__()
        for name, val in (("in_features", in_features), ("hidden", hidden)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f"{name}: expected a positive int, got {val!r}")
        self.in_features, self.hidden, self.astro = in_features, hidden, bool(astro)
        self.w_in = nn.Linear(in_features, hidden)
        self.w_rec = nn.Linear(hidden, hidden, bias=False)
        with torch.no_grad():  # recurrent weights start small (orthogonal-ish scale 1/sqrt(hidden))
            nn.init.uniform_(self.w_rec.weight, -1.0 / math.sqrt(hidden), 1.0 / math.sqrt(hidden))
        if not astro:  # no astrocyte parameters at all: a plain recurrent LIF layer
            cell_kwargs = {**cell_kwargs, "gamma": 0.0, "learn_gamma": False, "learn_lambda": False}
            groups = 1
        self.cell = AstroLIF(hidden, groups, **cell_kwargs)  # type: ignore[arg-type]
        self.astro_: torch.Tensor | None = None

    def forward(
        self, x: torch.Tensor, state: AstroState | LIFState | None = None
    ) -> tuple[torch.Tensor, AstroState | LIFState]:
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.in_features or not len(x):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a time-first sequence [T, B, {self.in_features}] with T >= 1, "
                             f"got {shape}")
        T, B = x.shape[0], x.shape[1]
        if state is not None:
            v = state.v
            if v.shape != (B, self.hidden):
                bf = v.shape[0] == T != B
                hint = " x looks batch-first [B, T, in]; pass x.transpose(0, 1)." if bf else ""
                raise ValueError(f"state: expected v of shape {(B, self.hidden)} (batch of x), got "
                                 f"{tuple(v.shape)}.{hint}")
        p = self.cell.params()
        drive = self.w_in(x)  # (T, B, hidden): feed-forward part, computed once
        s = x.new_zeros(B, self.hidden)
        out, astro = [], []
        for t in range(T):
            c = drive[t] + self.w_rec(s)  # (B, hidden)
            if self.astro:
                s, state = astro_lif_step(c, state, p)  # type: ignore[arg-type]
                astro.append(state.a)
            else:
                s, state = lif_step(c, state, p.lif)  # type: ignore[arg-type]
            out.append(s)
        self.astro_ = torch.stack(astro).detach() if astro else None
        assert state is not None
        return torch.stack(out), state
