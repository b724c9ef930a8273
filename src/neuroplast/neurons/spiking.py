"""Integrate-and-fire spiking neurons: a pure step function, a fused multi-step kernel and thin
modules (time first, ``[T, B, ...]``).

Discrete LIF dynamics (one time step, dimensionless units, threshold ``V_th``)::

    h[t] = beta * v[t-1] + x[t]                 (charge; (1 - beta) * x[t] with decay_input)
    o[t] = H(z[t] - V_th),  z = h  or  z = phi(h) with the membrane potential rectifier
    v[t] = h[t] - r * o[t]                      reset="subtract" (soft reset, r = V_th by default)
    v[t] = h[t] * (1 - o[t])                    reset="zero"     (hard reset to 0)
    v[t] = h[t]                                 reset="none"

``beta = exp(-dt / tau_m)`` in the exact solution, ``1 - 1/tau`` in the forward-Euler form used
by PLIF/SpikingJelly (Fang et al. 2021, arXiv:2007.05785); the module takes ``tau`` (Euler
form, ``beta = 1 - 1/tau``) or ``beta`` directly. IF is the same with ``beta = 1``.
``H`` is the Heaviside step ``1[x > 0]``; training uses a surrogate derivative
(:mod:`neuroplast.neurons.surrogate`). The state is the membrane after the reset, ``v``.

Membrane potential rectifier (MPR; Guo et al., "Reducing Information Loss for Spiking Neural
Networks", ECCV 2022, arXiv:2307.04356) with ``V_th = 0.5``::

    phi(u) = 1 - (1 - u)^(1/3)                          u < 0     (variant "code", default)
             -(-u)^(1/3)                                u < 0     (variant "cube_root")
             tanh(3 (u - 1/2)) / (2 tanh(3/2)) + 1/2    0 <= u <= 1
             u^(1/3)                                    u > 1

The middle and upper branches are confirmed in the authors' code (github.com/yfguo91/Re-Loss,
``models/spike_layer.py``, function ``MPR``); its lower branch is ``1 - (1 - u)^(1/3)``, which
pulls every negative potential towards 0 (``|phi(u)| < |u|``) with finite slope 1/3 at 0. The
"cube_root" variant is the form recorded in our paper notes; it pushes potentials in (-1, 0)
*away* from 0 and has an unbounded slope at 0^-. The paper's own equation text could not be
retrieved here, so the code form is the default. The same code resets softly by subtracting the
spike (``u <- u - o``) while firing at ``phi(u) > 0.5``: use ``threshold=0.5, reset_by=1.0``.

Gradients: the spike uses a surrogate derivative; by default the reset term keeps its gradient
(``detach_reset=False``), so backward is the exact BPTT of the surrogate model, as in SpikingJelly's
and Norse's defaults and in the InfLoR-SNN code; ``detach_reset=True`` drops it, as snnTorch always
does. :func:`lif_multistep` (used by the modules) runs the whole sequence in one custom autograd
function and equals the step-by-step :func:`lif_multistep_reference` (tests compare both, and
``gradcheck`` the fused backward with a smooth spike function).

snnTorch ``Leaky(reset_mechanism="subtract")`` applies the subtraction one step later and
*after* the decay (``U[t] = beta U[t-1] + I[t] - V_th S[t-1]``), so its reset is not decayed;
its ``mem`` output is the pre-reset potential ``h``. Our immediate reset reproduces the same
spike trains with ``reset_by = V_th / beta`` (see :func:`snntorch_leaky_params`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from neuroplast.neurons import surrogate as _surrogate
from neuroplast.neurons._lif_fused import BACKENDS, _FusedConfig, _FusedLIF
from neuroplast.neurons.mpr import MPR_VARIANTS, mpr, mpr_grad
from neuroplast.neurons.surrogate import Surrogate

__all__ = [
    "LIFState",
    "LIFParams",
    "mpr",
    "mpr_grad",
    "lif_step",
    "lif_multistep",
    "lif_multistep_reference",
    "quantization_error",
    "snntorch_leaky_params",
    "LIF",
    "IF",
    "reset_states",
    "RESETS",
    "MPR_VARIANTS",
]

RESETS = ("subtract", "zero", "none")


# ----------------------------------------------------------------------------- functional core


class LIFState(NamedTuple):
    """Neuron state: ``v``, the membrane potential after the reset of the last step."""

    v: torch.Tensor


class LIFParams(NamedTuple):
    """Parameters of :func:`lif_step` / :func:`lif_multistep`.

    ``beta`` and ``threshold`` are floats or tensors broadcastable to one time step of the input
    (per-neuron values allowed). ``reset_by`` is the amount a subtract reset removes
    (``None``: the threshold). ``mpr``: ``None`` or an MPR variant name. ``detach_reset``: no
    gradient through the reset term (as snnTorch always does); the default keeps it.
    """

    beta: torch.Tensor | float = 0.5
    threshold: torch.Tensor | float = 1.0
    reset: str = "subtract"
    reset_by: float | None = None
    surrogate: Surrogate = _surrogate.ATan()
    mpr: str | None = None
    detach_reset: bool = False
    decay_input: bool = False


_DEFAULT = LIFParams()


def _check_params(p: LIFParams) -> None:
    if p.reset not in RESETS:
        raise ValueError(f"reset: expected one of {RESETS}, got {p.reset!r}")
    if p.mpr is not None and p.mpr not in MPR_VARIANTS:
        raise ValueError(f"mpr: expected None or one of {MPR_VARIANTS}, got {p.mpr!r}")
    if not isinstance(p.surrogate, Surrogate):
        raise TypeError(
            f"surrogate: expected a Surrogate instance in LIFParams (use "
            f"neuroplast.neurons.surrogate.get(name)), got {type(p.surrogate).__name__}"
        )
    if p.reset_by is not None and not isinstance(p.reset_by, (int, float)):
        raise TypeError(f"reset_by: expected a float or None, got {type(p.reset_by).__name__}")


def _as_tensor(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(dtype=like.dtype, device=like.device)
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)


def _step_full(
    x: torch.Tensor, v: torch.Tensor | None, p: LIFParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step; returns (spikes, v_after_reset, h_before_reset)."""
    beta = p.beta
    if p.decay_input:
        x = (1.0 - beta) * x
    h = x if v is None else beta * v + x
    z = mpr(h, p.mpr) if p.mpr is not None else h
    s = p.surrogate(z - p.threshold)
    if p.reset == "none":
        return s, h, h
    s_reset = s.detach() if p.detach_reset else s
    if p.reset == "zero":
        v_new = h * (1.0 - s_reset)
    else:
        r = p.threshold if p.reset_by is None else p.reset_by
        v_new = h - r * s_reset
    return s, v_new, h


def lif_step(
    x: torch.Tensor, state: LIFState | None, params: LIFParams = _DEFAULT
) -> tuple[torch.Tensor, LIFState]:
    """One LIF/IF time step (the readable reference): ``(spikes, new_state)``.

    ``x``: input current ``[B, ...]``; ``state=None`` starts from ``v = 0``.
    Equations in the module docstring (arXiv:2007.05785 for the LIF form, arXiv:2307.04356 for
    the soft reset and MPR).
    """
    _check_params(params)
    v = None if state is None else state.v
    s, v_new, _ = _step_full(x, v, params)
    return s, LIFState(v_new)


def lif_multistep_reference(
    x: torch.Tensor,
    state: LIFState | None,
    params: LIFParams = _DEFAULT,
    return_membrane: bool = False,
) -> tuple[torch.Tensor, LIFState] | tuple[torch.Tensor, LIFState, torch.Tensor]:
    """Step-by-step loop over :func:`lif_step` for time-first ``x [T, B, ...]``.

    Returns ``(spikes [T, B, ...], final_state)`` and, with ``return_membrane``, the pre-reset
    membrane ``h [T, B, ...]`` (detached).
    """
    _check_params(params)
    v = None if state is None else state.v
    spikes, hs = [], []
    for t in range(x.shape[0]):
        s, v, h = _step_full(x[t], v, params)
        spikes.append(s)
        if return_membrane:
            hs.append(h.detach())
    if v is None:  # T == 0 is rejected by callers; keep mypy happy
        raise ValueError("x: expected at least one time step")
    out = torch.stack(spikes)
    if return_membrane:
        return out, LIFState(v), torch.stack(hs)
    return out, LIFState(v)


def lif_multistep(
    x: torch.Tensor,
    state: LIFState | None,
    params: LIFParams = _DEFAULT,
    return_membrane: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, LIFState] | tuple[torch.Tensor, LIFState, torch.Tensor]:
    """Fused multi-step LIF/IF over time-first ``x [T, B, ...]`` (same numbers and surrogate
    gradients as :func:`lif_multistep_reference`, several times faster and lighter).

    Returns ``(spikes, final_state)`` and, with ``return_membrane``, the pre-reset membrane
    ``h [T, B, ...]`` (no gradient). ``backend="auto"`` runs the time loops of CUDA tensors
    (float32 and below) in Triton kernels when Triton is installed (:mod:`._lif_triton`);
    ``"torch"`` keeps the op-by-op loops everywhere.
    """
    _check_params(params)
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"x: expected a time-first tensor [T, B, ...] with T >= 1, got {tuple(x.shape)}")
    beta = _as_tensor(params.beta, x)
    threshold = _as_tensor(params.threshold, x)
    if params.decay_input:
        x = (1.0 - beta) * x
    v0 = torch.zeros_like(x[0]) if state is None else state.v
    cfg = _FusedConfig(
        params.reset,
        None if params.reset_by is None else float(params.reset_by),
        params.surrogate,
        params.mpr,
        params.detach_reset,
        backend,
    )
    S, v_final, H = _FusedLIF.apply(x, v0, beta, threshold, cfg)
    if return_membrane:
        return S, LIFState(v_final), H
    return S, LIFState(v_final)


def quantization_error(
    membrane: torch.Tensor, spikes: torch.Tensor, mpr_variant: str | None = None
) -> torch.Tensor:
    """Mean |z - o| between the potential fed to the spike function and the spike, with
    ``z = phi(u)`` under the MPR and ``z = u`` otherwise (InfLoR-SNN, arXiv:2307.04356).
    Meaningful for ``V_th = 0.5`` and unit spikes, where firing is rounding ``z`` to {0, 1}."""
    if membrane.shape != spikes.shape:
        raise ValueError(
            f"spikes: expected the shape of membrane {tuple(membrane.shape)}, got {tuple(spikes.shape)}"
        )
    z = mpr(membrane, mpr_variant) if mpr_variant is not None else membrane
    return (z - spikes).abs().mean()


def snntorch_leaky_params(beta: float, threshold: float = 1.0, **kwargs: Any) -> LIFParams:
    """LIFParams whose spike trains equal snnTorch ``Leaky(beta, threshold,
    reset_mechanism="subtract")``: snnTorch subtracts an undecayed ``V_th`` one step later, which
    our immediate reset matches with ``reset_by = V_th / beta`` (``beta > 0``)."""
    if not beta > 0:
        raise ValueError(f"beta: expected > 0 for the snnTorch mapping, got {beta!r}")
    return LIFParams(beta=beta, threshold=threshold, reset="subtract", reset_by=threshold / beta, **kwargs)


# ----------------------------------------------------------------------------- modules


def _shape_tuple(shape: int | Sequence[int] | None) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if isinstance(shape, int):
        return (shape,)
    out = tuple(int(s) for s in shape)
    if any(s < 1 for s in out):
        raise ValueError(f"shape: expected positive sizes, got {shape!r}")
    return out


class _SpikingNeuron(nn.Module):
    """Shared machinery of :class:`LIF` and :class:`IF`."""

    def __init__(
        self,
        *,
        threshold: float,
        reset: str,
        reset_by: float | None,
        surrogate: str | Surrogate,
        mpr: bool | str,
        detach_reset: bool,
        learn_threshold: bool,
        shape: int | Sequence[int] | None,
        step_mode: str,
        stateful: bool | None,
        fused: bool,
        return_state: bool,
        record_membrane: bool,
    ) -> None:
        super().__init__()
        if reset not in RESETS:
            raise ValueError(f"reset: expected one of {RESETS}, got {reset!r}")
        if step_mode not in ("multi", "single"):
            raise ValueError(f"step_mode: expected 'multi' (x is [T, B, ...]) or 'single' (x is [B, ...]), "
                             f"got {step_mode!r}")
        if mpr is True:
            mpr = "code"
        if mpr is False or mpr is None:
            mpr = None
        elif mpr not in MPR_VARIANTS:
            raise ValueError(f"mpr: expected False, True or one of {MPR_VARIANTS}, got {mpr!r}")
        if reset_by is not None and not (isinstance(reset_by, (int, float)) and reset_by > 0):
            raise ValueError(f"reset_by: expected a positive float or None, got {reset_by!r}")
        if not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold: expected a float, got {type(threshold).__name__}")
        self.shape = _shape_tuple(shape)
        self.reset = reset
        self.reset_by = None if reset_by is None else float(reset_by)
        self.surrogate = _surrogate.get(surrogate, "surrogate")
        self.mpr = mpr
        self.detach_reset = bool(detach_reset)
        self.step_mode = step_mode
        self.stateful = (step_mode == "single") if stateful is None else bool(stateful)
        self.fused = bool(fused)
        self.return_state = bool(return_state)
        self.record_membrane = bool(record_membrane)
        self.learn_threshold = bool(learn_threshold)
        th = torch.full(self.shape or (), float(threshold))
        if learn_threshold:
            self.threshold = nn.Parameter(th)
        else:
            self.register_buffer("threshold", th)
        self.state: LIFState | None = None
        self.membrane_: torch.Tensor | None = None

    # subclasses -----------------------------------------------------------------
    def effective_beta(self) -> torch.Tensor | float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decay_input(self) -> bool:
        return False

    # state ----------------------------------------------------------------------
    def reset_state(self) -> None:
        """Forget the carried state (call between independent samples when stateful)."""
        self.state = None
        self.membrane_ = None

    def detach_state(self) -> None:
        """Cut the autograd history of the carried state (truncated BPTT)."""
        if self.state is not None:
            self.state = LIFState(self.state.v.detach())

    def params(self) -> LIFParams:
        """The functional parameters this module runs with."""
        return LIFParams(
            beta=self.effective_beta(),
            threshold=self.threshold,
            reset=self.reset,
            reset_by=self.reset_by,
            surrogate=self.surrogate,
            mpr=self.mpr,
            detach_reset=self.detach_reset,
            decay_input=self._decay_input(),
        )

    def _check_input(self, x: torch.Tensor, state: LIFState | None) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
        lead = 2 if self.step_mode == "multi" else 1
        layout = "time-first [T, B, ...]" if lead == 2 else "[B, ...] (one time step)"
        if x.dim() < lead:
            raise ValueError(
                f"x: expected {layout} for step_mode={self.step_mode!r}, got shape {tuple(x.shape)}"
            )
        if lead == 2 and x.shape[0] == 0:
            raise ValueError(f"x: expected at least one time step, got shape {tuple(x.shape)}")
        if self.shape is not None:
            want = lead + len(self.shape)
            if x.dim() != want:
                other = "single" if lead == 2 else "multi"
                raise ValueError(
                    f"x: expected {layout} with neuron shape {self.shape} ({want} dims), got shape "
                    f"{tuple(x.shape)}; if this is {'one time step' if lead == 2 else 'a sequence'}, use "
                    f"step_mode={other!r}"
                )
            try:
                torch.broadcast_shapes(tuple(x.shape[lead:]), self.shape)
            except RuntimeError:
                raise ValueError(
                    f"x: trailing dims {tuple(x.shape[lead:])} do not match the neuron shape {self.shape}"
                ) from None
        if state is not None:
            if not isinstance(state, LIFState):
                raise TypeError(f"state: expected a LIFState or None, got {type(state).__name__}")
            step_shape = tuple(x.shape[1:]) if lead == 2 else tuple(x.shape)
            if tuple(state.v.shape) != step_shape:
                hint = ""
                sb = state.v.shape[0] if state.v.dim() else None
                if lead == 2 and sb is not None and x.shape[0] == sb and x.shape[1] != sb:
                    hint = (" x looks batch-first [B, T, ...]; pass time-first x.transpose(0, 1)"
                            " (or the step_mode is wrong).")
                elif sb is not None and step_shape and step_shape[0] != sb:
                    hint = (f" The state has batch size {sb} but x has batch size {step_shape[0]}: call "
                            "reset_state() (or neuroplast.neurons.spiking.reset_states(model)) between "
                            "batches.")
                raise ValueError(
                    f"state: expected v of shape {step_shape} (one time step of x), got "
                    f"{tuple(state.v.shape)}.{hint}"
                )

    def forward(
        self, x: torch.Tensor, state: LIFState | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, LIFState]:
        if state is None and self.stateful:
            state = self.state
        self._check_input(x, state)
        p = self.params()
        if self.step_mode == "single":
            s, v, h = _step_full(x, None if state is None else state.v, p)
            new_state = LIFState(v)
            if self.record_membrane:
                self.membrane_ = h.detach()
        else:
            run = lif_multistep if self.fused else lif_multistep_reference
            if self.record_membrane:
                s, new_state, h = run(x, state, p, return_membrane=True)  # type: ignore[misc]
                self.membrane_ = h
            else:
                s, new_state = run(x, state, p)  # type: ignore[misc]
        if self.stateful:
            self.state = new_state
        if self.return_state:
            return s, new_state
        return s

    def extra_repr(self) -> str:
        parts = [f"threshold={float(self.threshold.detach().flatten()[0]):g}", f"reset={self.reset!r}"]
        if self.reset_by is not None:
            parts.append(f"reset_by={self.reset_by:g}")
        parts.append(f"surrogate={self.surrogate!r}")
        if self.mpr:
            parts.append(f"mpr={self.mpr!r}")
        if self.detach_reset:
            parts.append("detach_reset=True")
        if self.shape is not None:
            parts.append(f"shape={self.shape}")
        parts.append(f"step_mode={self.step_mode!r}")
        return ", ".join(parts)


class LIF(_SpikingNeuron):
    """Leaky integrate-and-fire neurons (module docstring for the equations; PLIF learnable time
    constant of Fang et al. 2021, arXiv:2007.05785).

    Args:
        tau: membrane time constant in steps (``beta = 1 - 1/tau``, tau > 1). Ignored if ``beta``
            is given.
        beta: decay factor in (0, 1), alternative to ``tau``.
        threshold: firing threshold ``V_th`` (learnable with ``learn_threshold``).
        reset: ``"subtract"`` (soft), ``"zero"`` (hard) or ``"none"``.
        reset_by: amount a subtract reset removes (default: the threshold).
        surrogate: name (``"atan"``, ``"sigmoid"``, ``"fast_sigmoid"``, ``"triangle"``) or object.
        mpr: membrane potential rectifier (``True`` = variant ``"code"``, or a variant name).
        detach_reset: no gradient through the reset (snnTorch always detaches; default keeps it).
        decay_input: charge with ``(1 - beta) x`` (SpikingJelly default) instead of ``x``.
        learn_tau: learn ``beta = sigmoid(w)`` (PLIF parameterisation).
        learn_threshold: learn ``V_th``.
        shape: neuron shape of per-neuron parameters (e.g. ``256`` or ``(C, 1, 1)``); also checks
            the input layout. ``None``: one shared value.
        step_mode: ``"multi"`` (``x [T, B, ...]``, time first) or ``"single"`` (``x [B, ...]``).
        stateful: carry the final state into the next call (default: single-step only); clear it
            with :meth:`reset_state` or :func:`reset_states`.
        fused: use the fused multi-step kernel (``False``: the step-by-step reference loop).
        return_state: return ``(spikes, state)`` instead of ``spikes``.
        record_membrane: keep the last pre-reset membrane in ``membrane_`` (no gradient).
    """

    def __init__(
        self,
        tau: float = 2.0,
        *,
        beta: float | None = None,
        threshold: float = 1.0,
        reset: str = "subtract",
        reset_by: float | None = None,
        surrogate: str | Surrogate = "atan",
        mpr: bool | str = False,
        detach_reset: bool = False,
        decay_input: bool = False,
        learn_tau: bool = False,
        learn_threshold: bool = False,
        shape: int | Sequence[int] | None = None,
        step_mode: str = "multi",
        stateful: bool | None = None,
        fused: bool = True,
        return_state: bool = False,
        record_membrane: bool = False,
    ) -> None:
        super().__init__(
            threshold=threshold, reset=reset, reset_by=reset_by, surrogate=surrogate, mpr=mpr,
            detach_reset=detach_reset, learn_threshold=learn_threshold, shape=shape,
            step_mode=step_mode, stateful=stateful, fused=fused, return_state=return_state,
            record_membrane=record_membrane,
        )
        if beta is None:
            if not isinstance(tau, (int, float)) or not tau > 1:
                raise ValueError(f"tau: expected a number > 1 (beta = 1 - 1/tau), got {tau!r}")
            beta = 1.0 - 1.0 / float(tau)
        if not isinstance(beta, (int, float)) or not 0.0 < beta < 1.0:
            raise ValueError(f"beta: expected a number in (0, 1) (use IF for beta = 1), got {beta!r}")
        self.learn_tau = bool(learn_tau)
        self.decay_input = bool(decay_input)
        b = torch.full(self.shape or (), float(beta))
        if learn_tau:
            self.decay_logit = nn.Parameter(torch.log(b) - torch.log1p(-b))
        else:
            self.register_buffer("decay", b)

    def effective_beta(self) -> torch.Tensor:
        """beta (a tensor of the parameter shape)."""
        return torch.sigmoid(self.decay_logit) if self.learn_tau else self.decay

    @property
    def beta(self) -> torch.Tensor:
        return self.effective_beta()

    @property
    def tau(self) -> torch.Tensor:
        """Time constant in steps, ``1 / (1 - beta)``."""
        return 1.0 / (1.0 - self.effective_beta())

    def _decay_input(self) -> bool:
        return self.decay_input

    def extra_repr(self) -> str:
        b = self.effective_beta().detach().flatten()[0]
        extra = f"beta={float(b):g}" + (", learn_tau=True" if self.learn_tau else "")
        return extra + ", " + super().extra_repr()


class IF(_SpikingNeuron):
    """Integrate-and-fire neurons: :class:`LIF` with ``beta = 1`` (no leak). Same arguments
    except ``tau``/``beta``/``decay_input``/``learn_tau``."""

    def __init__(
        self,
        *,
        threshold: float = 1.0,
        reset: str = "subtract",
        reset_by: float | None = None,
        surrogate: str | Surrogate = "atan",
        mpr: bool | str = False,
        detach_reset: bool = False,
        learn_threshold: bool = False,
        shape: int | Sequence[int] | None = None,
        step_mode: str = "multi",
        stateful: bool | None = None,
        fused: bool = True,
        return_state: bool = False,
        record_membrane: bool = False,
    ) -> None:
        super().__init__(
            threshold=threshold, reset=reset, reset_by=reset_by, surrogate=surrogate, mpr=mpr,
            detach_reset=detach_reset, learn_threshold=learn_threshold, shape=shape,
            step_mode=step_mode, stateful=stateful, fused=fused, return_state=return_state,
            record_membrane=record_membrane,
        )

    def effective_beta(self) -> float:
        return 1.0


def reset_states(model: nn.Module) -> int:
    """Call ``reset_state()`` on every spiking neuron module of ``model``; returns how many."""
    n = 0
    for m in model.modules():
        if isinstance(m, _SpikingNeuron):
            m.reset_state()
            n += 1
    return n
