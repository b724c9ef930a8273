"""A CA3-inspired spiking content-addressable memory (Casanueva-Morato et al., arXiv:2310.05868;
facts from the authors' sPyMem package, model ``CA3_content_addressable``), plus the Hebbian
Hopfield net used as its baseline.

Neurons: current-based integrate-and-fire with exponential synaptic current (PyNN
``IF_curr_exp``, sPyMem parameters: cm = 0.27 nF, tau_m = 3 ms, tau_syn = 0.3 ms,
V_th - V_rest = 3 mV, V_reset = V_rest), discrete time dt = 1 ms::

    I[t]  = I[t-1] exp(-dt/tau_syn) + sum_j w_j s_j[t]          (nA; arrivals of step t)
    Ibar  = I[t] (tau_syn/dt) (1 - exp(-dt/tau_syn))             (mean current over the step)
    v[t]  = beta v[t-1] + (1 - beta) R Ibar,  beta = exp(-dt/tau_m), R = tau_m / cm   (mV above rest)
    spike when v > V_th - V_rest, then v = 0 (reset to rest) and ``tau_refrac/dt`` refractory steps

The membrane part is :func:`neuroplast.neurons.spiking.lif_step` (zero reset); this module adds
only the synaptic current and the refractory counter (:func:`if_curr_exp_step`). With these
numbers one 6 nA spike moves v by 5.5 mV (fires the neuron), one 3 nA spike by 2.7 mV (does not).

Network (one-hot cue population of ``n_cues`` neurons, content population of ``n_content``):

- input -> cue, input -> content: one-to-one, static, ``w_input`` = 6 nA, delay 1 step;
- cue -> content: all-to-all, plastic (pair STDP of :mod:`neuroplast.plasticity.stdp`, additive,
  tau+- = 3 ms, A+- = w_max = 6, weights in [0, 6], from 0), delay 1 step: one-shot learning;
- content -> cue: the same efficacies used in the reverse direction (``W^T``, our simplification of
  sPyMem's second STDP projection between its dedicated recall populations), delay 1 step, active
  only while no cue is being presented (sPyMem's ``CA3contCond`` gate, inhibited by the cue);
- cue competition (``wta=True``, our choice): fast inhibition lets only the cue(s) with the
  largest content->cue drive fire (ties all fire). ``wta=False`` is sPyMem's behaviour: every cue
  that shares an active bit with the fragment fires and the union of their contents is recalled.

Operations (each from rest; in the hardware model consecutive operations are separated by a
quiescent gap, here every operation starts with fresh membranes and traces):

- learn (plastic): the cue is held for ``hold`` = 3 steps (t = 0..2) and the content for 3 steps one
  step later (t = 1..3), so that the content neurons fire when the cue's spikes arrive. Pairing
  arithmetic (A = 6, tau = 3): a new content bit is potentiated to w_max at its first pairing
  (dt_s = 0) and re-potentiated after each depression because its input keeps it firing; an old
  content bit (w = 6) fires once from the cue, then the next cue spike depresses it
  (6 - 6 e^{-1/3} = 1.70 nA, below the 3.3 nA a spike needs) and the one after to 0. Re-learning
  a cue therefore forgets its old content (the exact delays and pairing order of SpiNNaker are
  not reproduced; this arithmetic is ours).
- recall from a cue (read-only): cue at t = 0, cue fires at 1, its content at 2.
- recall from a content fragment (read-only): fragment at t = 0, fragment neurons fire at 1, the
  winning cue at 2, the whole content at 3.

Plasticity is gated to learn operations (sPyMem routes recalls through separate recall populations
whose synapses do not touch the cue->content memory); recalls are batched over queries.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from neuroplast.neurons.spiking import LIFParams, LIFState, lif_step
from neuroplast.plasticity.stdp import STDPParams, STDPState, stdp_decay, stdp_post_update, stdp_pre_update

__all__ = [
    "IFCurrExpParams",
    "IFCurrExpState",
    "if_curr_exp_step",
    "CAMTrace",
    "HippocampalCAM",
    "hopfield_weights",
    "hopfield_recall",
]


# ----------------------------------------------------------------------------- neuron: IF_curr_exp


class IFCurrExpParams(NamedTuple):
    """Current-based IF neuron (PyNN ``IF_curr_exp``); defaults from sPyMem (arXiv:2310.05868).

    Units: ms, nF, nA, mV; ``v_thresh`` is ``V_th - V_rest``. ``tau_refrac`` = 0 (our choice; with
    dt = tau_refrac = 1 ms SpiNNaker blocks one step after each spike).
    """

    tau_m: float = 3.0
    cm: float = 0.27
    tau_syn: float = 0.3
    v_thresh: float = 3.0
    tau_refrac: float = 0.0
    dt: float = 1.0


_DEFAULT_NEURON = IFCurrExpParams()


class IFCurrExpState(NamedTuple):
    """``i_syn`` (nA, after the last step's arrivals), ``v`` (mV above rest, after reset),
    ``refrac`` (refractory steps left)."""

    i_syn: Tensor
    v: Tensor
    refrac: Tensor


def _check_neuron(p: IFCurrExpParams) -> None:
    for name in ("tau_m", "cm", "tau_syn", "v_thresh", "dt"):
        v = getattr(p, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
    if not (isinstance(p.tau_refrac, (int, float)) and p.tau_refrac >= 0):
        raise ValueError(f"tau_refrac: expected a number >= 0, got {p.tau_refrac!r}")


def _decays(params: IFCurrExpParams) -> tuple[float, float]:
    """Per-step decay factors of the synaptic current and the membrane: exp(-dt/tau_syn), exp(-dt/tau_m)."""
    return math.exp(-params.dt / params.tau_syn), math.exp(-params.dt / params.tau_m)


def if_curr_exp_step(
    current: Tensor, state: IFCurrExpState | None, params: IFCurrExpParams = _DEFAULT_NEURON
) -> tuple[Tensor, IFCurrExpState]:
    """One step of the current-based IF neuron (module docstring): ``current`` is the weighted sum
    of the spikes arriving this step, in nA, shape (B, N). Returns ``(spikes, new_state)``."""
    _check_neuron(params)
    if not isinstance(current, Tensor) or not current.is_floating_point():
        raise TypeError(f"current: expected a floating-point tensor (B, N), got {type(current).__name__}")
    if state is None:
        z = torch.zeros_like(current)
        state = IFCurrExpState(z, z, z)
    elif tuple(state.v.shape) != tuple(current.shape):
        raise ValueError(
            f"state: expected tensors of shape {tuple(current.shape)} (one step of current), got "
            f"{tuple(state.v.shape)}; start from state=None when the batch size changes"
        )
    ds, beta = _decays(params)
    i = state.i_syn * ds + current
    i_mean = i * (params.tau_syn / params.dt) * (1.0 - ds)
    drive = (params.tau_m / params.cm) * (1.0 - beta) * i_mean
    drive = torch.where(state.refrac > 0, torch.zeros_like(drive), drive)
    s, lif = lif_step(drive, LIFState(state.v), LIFParams(beta=beta, threshold=params.v_thresh, reset="zero"))
    n_ref = float(round(params.tau_refrac / params.dt))
    refrac = torch.where(s > 0, torch.full_like(s, n_ref), (state.refrac - 1.0).clamp_min(0.0))
    return s, IFCurrExpState(i, lif.v, refrac)


# ----------------------------------------------------------------------------- the memory


class CAMTrace(NamedTuple):
    """Spike trains of one operation: ``cue`` [T, B, n_cues], ``content`` [T, B, n_content]."""

    cue: Tensor
    content: Tensor


class HippocampalCAM(nn.Module):
    """CA3-inspired spiking content-addressable memory (module docstring; arXiv:2310.05868).

    The learned cue->content efficacies are the buffer ``weight`` (n_content, n_cues) in nA
    (``state_dict`` round trip). :meth:`learn` stores one (cue, content) pair in one shot and
    forgets the cue's previous content; :meth:`recall_cue` and :meth:`recall_content` read it back,
    batched over queries; :meth:`run` is the raw network on time-first input spike trains.
    """

    def __init__(
        self,
        n_cues: int,
        n_content: int,
        *,
        w_max: float = 6.0,
        a_plus: float = 6.0,
        a_minus: float = 6.0,
        tau_plus: float = 3.0,
        tau_minus: float = 3.0,
        w_input: float = 6.0,
        hold: int = 3,
        wta: bool = True,
        neuron: IFCurrExpParams = _DEFAULT_NEURON,
    ) -> None:
        super().__init__()
        for name, v in (("n_cues", n_cues), ("n_content", n_content), ("hold", hold)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        if not w_input > 0:
            raise ValueError(f"w_input: expected a positive weight in nA, got {w_input!r}")
        _check_neuron(neuron)
        self.n_cues, self.n_content, self.hold, self.wta = n_cues, n_content, hold, bool(wta)
        self.w_input = float(w_input)
        self.neuron = neuron
        self.stdp = STDPParams(
            a_plus=float(a_plus),
            a_minus=float(a_minus),
            tau_plus=float(tau_plus),
            tau_minus=float(tau_minus),
            dt=neuron.dt,
            w_min=0.0,
            w_max=float(w_max),
        )
        self.register_buffer("weight", torch.zeros(n_content, n_cues))

    # -- the network ---------------------------------------------------------------------------
    def _check_train(self, name: str, x: Tensor, n: int) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a spike tensor [T, B, {n}], got {type(x).__name__}")
        if x.dim() != 3 or x.shape[-1] != n:
            hint = " (time first: [T, B, N])" if x.dim() == 3 else ""
            raise ValueError(f"{name}: expected spikes of shape [T, B, {n}]{hint}, got {tuple(x.shape)}")

    @torch.no_grad()
    def run(self, cue_input: Tensor, content_input: Tensor, plastic: bool = False) -> CAMTrace:
        """Simulate the network on input spike trains ``cue_input`` [T, B, n_cues] and
        ``content_input`` [T, B, n_content] (time first; input spikes arrive one step later).
        ``plastic``: apply STDP to ``weight`` (the batch's updates are summed)."""
        self._check_train("cue_input", cue_input, self.n_cues)
        self._check_train("content_input", content_input, self.n_content)
        if cue_input.shape[:2] != content_input.shape[:2]:
            raise ValueError(
                f"content_input: expected the same [T, B] as cue_input {tuple(cue_input.shape[:2])}, got "
                f"{tuple(content_input.shape[:2])}"
            )
        T, B = cue_input.shape[:2]
        w = self.weight  # (N, M) = (post, pre)
        dt = w.dtype
        cue_in, con_in = cue_input.to(dt), content_input.to(dt)
        cue_st: IFCurrExpState | None = None
        con_st: IFCurrExpState | None = None
        trace = STDPState(torch.zeros(B, self.n_cues, dtype=dt), torch.zeros(B, self.n_content, dtype=dt))
        cue_prev = torch.zeros(B, self.n_cues, dtype=dt)
        con_prev = torch.zeros(B, self.n_content, dtype=dt)
        cue_seen = torch.zeros(B, 1, dtype=torch.bool)
        zc, zn = torch.zeros(B, self.n_cues, dtype=dt), torch.zeros(B, self.n_content, dtype=dt)
        cue_out, con_out = [], []
        for t in range(T):
            in_cue = cue_in[t - 1] if t > 0 else zc
            in_con = con_in[t - 1] if t > 0 else zn
            # cue layer: input + gated reverse path from content (with competition)
            rev = con_prev @ w  # (B, M) nA
            rev = torch.where(cue_seen, torch.zeros_like(rev), rev)
            if self.wta:
                top = rev.amax(dim=1, keepdim=True)
                rev = torch.where((rev >= top - 1e-6) & (top > 0), rev, torch.zeros_like(rev))
            cue_seen = cue_seen | (in_cue.sum(1, keepdim=True) > 0)
            s_cue, cue_st = if_curr_exp_step(self.w_input * in_cue + rev, cue_st, self.neuron)
            # content layer: depression on arriving cue spikes, transmit, fire, potentiation
            if plastic:
                trace = stdp_decay(trace, self.stdp)
                trace = stdp_pre_update(w, cue_prev, trace, self.stdp)
            fwd = cue_prev @ w.T  # (B, N) nA
            s_con, con_st = if_curr_exp_step(self.w_input * in_con + fwd, con_st, self.neuron)
            if plastic:
                trace = stdp_post_update(w, s_con, trace, self.stdp)
            cue_out.append(s_cue)
            con_out.append(s_con)
            cue_prev, con_prev = s_cue, s_con
        return CAMTrace(torch.stack(cue_out), torch.stack(con_out))

    def forward(self, cue_input: Tensor, content_input: Tensor, plastic: bool = False) -> CAMTrace:
        """Same as :meth:`run`."""
        return self.run(cue_input, content_input, plastic)

    # -- operations ----------------------------------------------------------------------------
    def _as_pattern(self, name: str, x: Tensor, n: int) -> Tensor:
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x)
        if x.shape[-1:] != (n,):
            raise ValueError(
                f"{name}: expected a binary pattern with last axis {n}, got shape {tuple(x.shape)}"
            )
        if x.dtype != torch.bool and not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(f"{name}: expected a binary (0/1 or bool) pattern")
        return x.to(self.weight.dtype)

    def learn(self, cue: int, content: Tensor) -> CAMTrace:
        """Store ``content`` (n_content,) binary under cue index ``cue`` in one presentation
        (plastic). The cue's previous content is forgotten."""
        if isinstance(cue, bool) or not isinstance(cue, int) or not 0 <= cue < self.n_cues:
            raise ValueError(f"cue: expected an int in [0, {self.n_cues}), got {cue!r}")
        c = self._as_pattern("content", content, self.n_content)
        if c.dim() != 1:
            raise ValueError(
                f"content: expected one pattern of shape ({self.n_content},), got {tuple(c.shape)}"
            )
        T = self.hold + 2
        cue_in = torch.zeros(T, 1, self.n_cues, dtype=c.dtype)
        con_in = torch.zeros(T, 1, self.n_content, dtype=c.dtype)
        cue_in[: self.hold, 0, cue] = 1.0
        con_in[1 : self.hold + 1, 0] = c
        return self.run(cue_in, con_in, plastic=True)

    def recall_cue(self, cues: Tensor) -> Tensor:
        """Content recalled from cue indices ``cues`` (B,) (long): (B, n_content) in {0, 1}."""
        cues = torch.as_tensor(cues)
        if cues.dim() != 1 or cues.dtype in (torch.bool,) or cues.is_floating_point():
            raise ValueError(
                f"cues: expected a 1-d tensor of cue indices, got {cues.dtype} {tuple(cues.shape)}"
            )
        if len(cues) and (int(cues.min()) < 0 or int(cues.max()) >= self.n_cues):
            raise ValueError(
                f"cues: expected indices in [0, {self.n_cues}), got min {int(cues.min())}, "
                f"max {int(cues.max())}"
            )
        B = len(cues)
        cue_in = torch.zeros(3, B, self.n_cues, dtype=self.weight.dtype)
        cue_in[0, torch.arange(B), cues] = 1.0
        out = self.run(cue_in, torch.zeros(3, B, self.n_content, dtype=self.weight.dtype))
        return out.content[2]

    def recall_content(self, fragment: Tensor) -> tuple[Tensor, Tensor]:
        """Recall from content fragments (B, n_content) binary: ``(cues (B, n_cues), content
        (B, n_content))``, both in {0, 1} (several cues fire on a tie, their contents merge)."""
        f = self._as_pattern("fragment", fragment, self.n_content)
        if f.dim() != 2:
            raise ValueError(f"fragment: expected (B, {self.n_content}), got {tuple(f.shape)}")
        B = f.shape[0]
        con_in = torch.zeros(4, B, self.n_content, dtype=f.dtype)
        con_in[0] = f
        out = self.run(torch.zeros(4, B, self.n_cues, dtype=f.dtype), con_in)
        return out.cue[2], out.content[3]

    def stored(self) -> Tensor:
        """The stored (cue, content) table read from the weights: (n_cues, n_content) bool, True
        where a cue's spike alone fires the content neuron (weight above the one-spike threshold)."""
        p = self.neuron
        ds, beta = _decays(p)
        w_fire = p.v_thresh / ((p.tau_m / p.cm) * (1 - beta) * (p.tau_syn / p.dt) * (1 - ds))
        return (self.weight > w_fire).T

    def extra_repr(self) -> str:
        return (
            f"n_cues={self.n_cues}, n_content={self.n_content}, w_max={self.stdp.w_max:g}, hold={self.hold}, "
            f"wta={self.wta}"
        )


# ----------------------------------------------------------------------------- baseline: Hopfield


def hopfield_weights(patterns: Tensor) -> Tensor:
    """Hebbian outer-product weights of a binary Hopfield net (Hopfield 1982):
    ``W = (1/N) sum_mu xi^mu xi^mu^T`` with zero diagonal, ``xi = 2 p - 1`` in {-1, +1}; ``patterns``
    (P, N) in {0, 1}. Capacity about 0.14 N random patterns (Amit, Gutfreund & Sompolinsky 1985)."""
    if not isinstance(patterns, Tensor) or patterns.dim() != 2:
        raise ValueError(
            f"patterns: expected a (P, N) binary tensor, got {tuple(getattr(patterns, 'shape', ()))}"
        )
    xi = 2.0 * patterns.to(torch.float32) - 1.0
    n = xi.shape[1]
    w = xi.T @ xi / n
    w.fill_diagonal_(0.0)
    return w


def hopfield_recall(
    weight: Tensor, probe: Tensor, steps: int = 20, generator: torch.Generator | None = None
) -> Tensor:
    """Asynchronous sign updates (random order per sweep) from ``probe`` (B, N) in {0, 1}, missing bits
    given as 0 (i.e. -1); ``steps`` sweeps. Returns (B, N) in {0, 1}."""
    if probe.dim() != 2 or probe.shape[1] != weight.shape[0]:
        raise ValueError(f"probe: expected (B, {weight.shape[0]}), got {tuple(probe.shape)}")
    s = 2.0 * probe.to(torch.float32) - 1.0
    n = weight.shape[0]
    for _ in range(steps):
        order = torch.randperm(n, generator=generator)
        changed = False
        for i in order.tolist():
            h = s @ weight[:, i]
            new = torch.where(h > 0, 1.0, torch.where(h < 0, -1.0, s[:, i]))
            changed = changed or bool((new != s[:, i]).any())
            s[:, i] = new
        if not changed:
            break
    return (s > 0).to(probe.dtype if probe.is_floating_point() else torch.float32)
