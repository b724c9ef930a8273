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

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from neuroplast.neurons import surrogate as _surrogate
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
MPR_VARIANTS = ("code", "cube_root")
_TANH_1_5 = math.tanh(1.5)
# Fused kernels split each time step into column blocks and the backward into time chunks that
# stay below PyTorch's intra-op parallel grain (32768 elements): every op then runs inline.
_GRAIN = 32768
_BLOCK = 16384


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


def mpr(u: torch.Tensor, variant: str = "code") -> torch.Tensor:
    """Membrane potential rectifier phi(u) of InfLoR-SNN (arXiv:2307.04356); see the module
    docstring for both variants. Continuous, increasing, phi(0)=0, phi(1/2)=1/2, phi(1)=1."""
    if variant not in MPR_VARIANTS:
        raise ValueError(f"variant: expected one of {MPR_VARIANTS}, got {variant!r}")
    one = torch.ones((), dtype=u.dtype, device=u.device)
    upper = torch.where(u > 1, u, one).pow(1.0 / 3.0)
    middle = torch.tanh(3.0 * (u.clamp(0.0, 1.0) - 0.5)) / (2.0 * _TANH_1_5) + 0.5
    if variant == "code":
        lower = 1.0 - (1.0 - u.clamp(max=0.0)).pow(1.0 / 3.0)
    else:
        lower = -torch.where(u < 0, -u, one).pow(1.0 / 3.0)
    return torch.where(u > 1, upper, torch.where(u < 0, lower, middle))


def mpr_grad(u: torch.Tensor, variant: str = "code") -> torch.Tensor:
    """d phi / du, with the branch choice of :func:`mpr` (0 <= u <= 1 is the middle branch)."""
    if variant not in MPR_VARIANTS:
        raise ValueError(f"variant: expected one of {MPR_VARIANTS}, got {variant!r}")
    one = torch.ones((), dtype=u.dtype, device=u.device)
    upper = torch.where(u > 1, u, one).pow(-2.0 / 3.0) / 3.0
    th = torch.tanh(3.0 * (u.clamp(0.0, 1.0) - 0.5))
    middle = (1.0 - th * th) * (3.0 / (2.0 * _TANH_1_5))
    if variant == "code":
        lower = (1.0 - u.clamp(max=0.0)).pow(-2.0 / 3.0) / 3.0
    else:
        lower = torch.where(u < 0, -u, one).pow(-2.0 / 3.0) / 3.0
    return torch.where(u > 1, upper, torch.where(u < 0, lower, middle))


def _mpr_inverse(y: torch.Tensor, variant: str) -> torch.Tensor:
    """phi^{-1}(y): phi is strictly increasing, so phi(u) > y  <=>  u > phi^{-1}(y)."""
    upper = y.pow(3)
    inner = ((y.clamp(0.0, 1.0) - 0.5) * (2.0 * _TANH_1_5)).clamp(-1.0 + 1e-12, 1.0 - 1e-12)
    middle = 0.5 + torch.atanh(inner) / 3.0
    lower = 1.0 - (1.0 - y).pow(3) if variant == "code" else -((-y).pow(3))
    return torch.where(y > 1, upper, torch.where(y < 0, lower, middle))


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


class _FusedConfig(NamedTuple):
    reset: str
    reset_by: float | None
    surrogate: Surrogate
    mpr: str | None
    detach_reset: bool
    backend: str


BACKENDS = ("auto", "torch")


def _triton_usable(t: torch.Tensor, backend: str) -> bool:
    """Whether the Triton kernels of :mod:`neuroplast.neurons._lif_triton` run ``t``: a CUDA
    tensor of at most 32-bit floats, Triton importable, and ``backend="auto"``."""
    if backend != "auto" or t.device.type != "cuda" or t.dtype == torch.float64:
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _flat_param(p: torch.Tensor, step_shape: torch.Size) -> tuple[float | None, torch.Tensor | None]:
    """(python scalar, None) for one shared value, else (None, values expanded to one step, flat)."""
    if p.numel() == 1:
        return float(p), None
    return None, p.expand(step_shape).reshape(-1)


def _reduce_flat(g_flat: torch.Tensor, like: torch.Tensor, step_shape: torch.Size) -> torch.Tensor:
    """Sum a per-step flat gradient [M] back to the shape of the parameter ``like``."""
    if like.numel() == 1:
        return g_flat.sum().reshape(like.shape)
    return g_flat.reshape(step_shape).sum_to_size(like.shape)


class _FusedLIF(torch.autograd.Function):
    """Whole-sequence LIF on ``x [T, ...]`` viewed as ``[T, M]`` (M = neurons x batch).

    Forward: the T loop with preallocated buffers (3 ops per step); it saves only the
    pre-reset membrane ``H`` and the spikes ``S``. Backward: the BPTT recurrence
    ``gh[t] = d[t] gs[t] + C[t] gh[t+1]`` with ``d = ds/dh`` (surrogate) and
    ``C = beta dv/dh``, one fused op per step; the surrogate terms are computed vectorised over
    time chunks. Work is split into column blocks below PyTorch's intra-op grain size, so each
    op runs inline on one thread: no fork/join per tiny op, which costs milliseconds on a busy
    machine. The neuron columns are independent over time, so blocking changes no number."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        v0: torch.Tensor,
        beta: torch.Tensor,
        threshold: torch.Tensor,
        cfg: _FusedConfig,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        T, step_shape = x.shape[0], x.shape[1:]
        plain = type(cfg.surrogate).heaviside is Surrogate.heaviside
        triton_fwd = plain and _triton_usable(x, cfg.backend)
        xf = x.reshape(T, -1).contiguous() if triton_fwd else x.reshape(T, -1)
        M = xf.shape[1]
        H = torch.empty_like(xf)
        S = torch.empty_like(xf)
        v_out = torch.empty_like(xf[0])
        v0f = v0.expand(step_shape).reshape(-1)
        b_s, b_f = _flat_param(beta, step_shape)
        th_s, th_f = _flat_param(threshold, step_shape)
        tied = cfg.reset_by is None
        block = _BLOCK if x.device.type == "cpu" else M  # accelerators: one block, no grain
        # fire on h > phi^{-1}(V_th) instead of phi(h) > V_th (phi is increasing): one op per step
        fire_s, fire_f = th_s, th_f
        if cfg.mpr is not None and plain:
            fire_s, fire_f = _flat_param(_mpr_inverse(threshold.detach(), cfg.mpr), step_shape)
        if triton_fwd:
            from neuroplast.neurons import _lif_triton

            th_all = th_s if th_f is None else th_f
            _lif_triton.forward(
                xf, v0f, b_s if b_f is None else b_f, fire_s if fire_f is None else fire_f,
                th_all if tied else cfg.reset_by, cfg.reset, H, S, v_out,
            )
        for j0 in range(0, M, block) if not triton_fwd else ():
            j1 = min(M, j0 + block)
            bb = b_s if b_f is None else b_f[j0:j1]
            th: float | torch.Tensor = th_s if th_f is None else th_f[j0:j1]  # type: ignore[assignment]
            fire: float | torch.Tensor = fire_s if fire_f is None else fire_f[j0:j1]  # type: ignore[assignment]
            r: float | torch.Tensor = th if tied else cfg.reset_by  # type: ignore[assignment]
            v = v_out[j0:j1]
            prev = v0f[j0:j1]
            for t in range(T):
                h = H[t, j0:j1]
                if b_f is None:
                    torch.add(xf[t, j0:j1], prev, alpha=bb, out=h)  # type: ignore[arg-type]
                else:
                    torch.addcmul(xf[t, j0:j1], prev, bb, out=h)  # type: ignore[arg-type]
                if plain:
                    torch.gt(h, fire, out=S[t, j0:j1])
                else:
                    z = mpr(h, cfg.mpr) if cfg.mpr is not None else h
                    S[t, j0:j1] = cfg.surrogate.heaviside(z - th)
                if cfg.reset == "subtract":
                    if isinstance(r, float):
                        torch.sub(h, S[t, j0:j1], alpha=r, out=v)
                    else:
                        torch.addcmul(h, S[t, j0:j1], r, value=-1.0, out=v)
                    prev = v
                elif cfg.reset == "zero":
                    torch.addcmul(h, h, S[t, j0:j1], value=-1.0, out=v)
                    prev = v
                else:
                    prev = h
            if cfg.reset == "none":
                v.copy_(prev)
        ctx.save_for_backward(H, S, v0, beta, threshold)
        ctx.set_materialize_grads(False)  # unused outputs (H, often the final state) get no zeros
        ctx.cfg = cfg
        ctx.step_shape = step_shape
        ctx.x_shape = x.shape
        H_out = H.view(x.shape)
        ctx.mark_non_differentiable(H_out)
        return S.view(x.shape), v_out.view(step_shape), H_out

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, gS: torch.Tensor | None, gv_final: torch.Tensor | None, _gH: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        H, S, v0, beta, threshold = ctx.saved_tensors
        cfg: _FusedConfig = ctx.cfg
        step_shape, H_shape = ctx.step_shape, ctx.x_shape
        need_x, need_v0, need_beta, need_th = ctx.needs_input_grad[:4]
        T, M = H.shape
        gSf = torch.zeros_like(H) if gS is None else gS.reshape(T, M)
        gvf = None if gv_final is None else gv_final.expand(step_shape).reshape(M)
        v0f = v0.expand(step_shape).reshape(M)
        b_s, b_f = _flat_param(beta, step_shape)
        th_s, th_f = _flat_param(threshold, step_shape)
        tied = cfg.reset_by is None
        live_reset = cfg.reset != "none" and not cfg.detach_reset
        plain = type(cfg.surrogate).heaviside is Surrogate.heaviside
        if plain and cfg.mpr is None and _triton_usable(H, cfg.backend):
            from neuroplast.neurons import _lif_triton

            code = _lif_triton.surrogate_code(cfg.surrogate)
            if code is not None:  # the whole backward in one kernel
                GH, g_beta, g_th = _lif_triton.backward(
                    H, S, gSf, gvf, v0f, b_s if b_f is None else b_f, th_s if th_f is None else th_f,
                    (th_s if th_f is None else th_f) if tied else cfg.reset_by, reset=cfg.reset,
                    live_reset=live_reset, tied_subtract=tied and cfg.reset == "subtract", surrogate=code,
                    need_beta=need_beta, need_threshold=need_th,
                )
                return _fused_grads(GH, g_beta, g_th, v0, beta, threshold, ctx.needs_input_grad, b_s, b_f,
                                    step_shape, H_shape)
        GH = torch.empty_like(H)
        g_beta = torch.zeros(M, dtype=H.dtype, device=H.device) if need_beta else None
        g_th = torch.zeros(M, dtype=H.dtype, device=H.device) if need_th else None
        keep_e = need_th  # the surrogate e = dH/dz is needed again for the threshold gradient
        on_cpu = H.device.type == "cpu"
        block = _BLOCK if on_cpu else M
        scan = None
        if _triton_usable(H, cfg.backend):
            from neuroplast.neurons._lif_triton import reverse_scan as scan
        for j0 in range(0, M, block):
            j1 = min(M, j0 + block)
            width = j1 - j0
            step = max(1, ((_GRAIN - 1) if on_cpu else (1 << 22)) // width)  # time steps per chunk
            bb: float | torch.Tensor = b_s if b_f is None else b_f[j0:j1]  # type: ignore[assignment]
            th: float | torch.Tensor = th_s if th_f is None else th_f[j0:j1]  # type: ignore[assignment]
            r: float | torch.Tensor = th if tied else cfg.reset_by  # type: ignore[assignment]
            gvT = None if gvf is None else gvf[j0:j1]
            for end in range(T, 0, -step):
                start = max(0, end - step)
                h, s, gs = H[start:end, j0:j1], S[start:end, j0:j1], gSf[start:end, j0:j1]
                z = mpr(h, cfg.mpr) if cfg.mpr is not None else h
                e = cfg.surrogate.grad_(torch.sub(z, th))  # surrogate dH/dz at z - V_th   (c, w)
                d = e * mpr_grad(h, cfg.mpr) if cfg.mpr is not None else e  # ds/dh
                gh = GH[start:end, j0:j1]
                torch.mul(d, gs, out=gh)
                # dv/dh = explicit part + (dv/ds) d ; None means 1
                dv = None
                if cfg.reset == "subtract" and live_reset:
                    base = d.clone() if (keep_e and d is e) else d
                    dv = base.mul_(-r).add_(1.0)
                elif cfg.reset == "zero":
                    if live_reset:
                        base = d.clone() if (keep_e and d is e) else d
                        dv = base.mul_(h).neg_().sub_(s).add_(1.0)
                    else:
                        dv = 1.0 - s
                last_coef = dv[-1].clone() if (end == T and dv is not None and gvT is not None) else None
                C = dv.mul_(bb) if dv is not None else None
                if scan is not None:  # the recurrence below in one kernel (block == M here)
                    if end == T and gvT is not None:
                        if last_coef is None:
                            gh[-1].add_(gvT)
                        else:
                            gh[-1].addcmul_(last_coef, gvT)
                    g_next = GH[end] if end < T else torch.zeros_like(GH[0])
                    scan(gh, bb if C is None else C, g_next)
                else:
                    for t in range(end - 1, start - 1, -1):
                        i = t - start
                        if t == T - 1:
                            if gvT is None:
                                pass
                            elif last_coef is None:
                                gh[i].add_(gvT)
                            else:
                                gh[i].addcmul_(last_coef, gvT)
                        elif C is not None:
                            gh[i].addcmul_(C[i], GH[t + 1, j0:j1])
                        elif b_f is None:
                            gh[i].add_(GH[t + 1, j0:j1], alpha=bb)  # type: ignore[arg-type]
                        else:
                            gh[i].addcmul_(bb, GH[t + 1, j0:j1])  # type: ignore[arg-type]
                if g_th is None and g_beta is None:
                    continue
                # gv[t] = dL/dv[t] = beta gh[t+1] (t < T-1), gv_final at T-1
                gv = torch.empty_like(gh)
                n_in = gv.shape[0] - (1 if end == T else 0)
                if n_in > 0:
                    torch.mul(GH[start + 1 : start + 1 + n_in, j0:j1], bb, out=gv[:n_in])
                if end == T:
                    if gvT is None:
                        gv[-1].zero_()
                    else:
                        gv[-1].copy_(gvT)
                if g_th is not None:
                    # ds/dth = -e; v depends on s (live reset) and on th itself (tied subtract)
                    inner = gs.clone()
                    if live_reset and cfg.reset == "subtract":
                        inner.sub_(r * gv)
                    elif live_reset and cfg.reset == "zero":
                        inner.sub_(h * gv)
                    contrib = e * inner
                    if tied and cfg.reset == "subtract":
                        contrib.addcmul_(s, gv)
                    g_th[j0:j1].sub_(contrib.sum(0))
                if g_beta is not None:
                    # dL/dbeta = sum_t gh[t] v[t-1]
                    vprev = torch.empty_like(gh)
                    lo = 1 if start == 0 else 0
                    if start == 0:
                        vprev[0].copy_(v0f[j0:j1])
                    hp, sp = H[start - 1 + lo : end - 1, j0:j1], S[start - 1 + lo : end - 1, j0:j1]
                    if hp.shape[0] > 0:
                        if cfg.reset == "subtract":
                            torch.sub(hp, sp * r, out=vprev[lo:])
                        elif cfg.reset == "zero":
                            torch.mul(hp, 1.0 - sp, out=vprev[lo:])
                        else:
                            vprev[lo:].copy_(hp)
                    g_beta[j0:j1].add_((gh * vprev).sum(0))
        return _fused_grads(GH, g_beta, g_th, v0, beta, threshold, ctx.needs_input_grad, b_s, b_f,
                            step_shape, H_shape)


def _fused_grads(
    GH: torch.Tensor,
    g_beta: torch.Tensor | None,
    g_th: torch.Tensor | None,
    v0: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    needs: tuple[bool, ...],
    b_s: float | None,
    b_f: torch.Tensor | None,
    step_shape: torch.Size,
    x_shape: torch.Size,
) -> tuple[torch.Tensor | None, ...]:
    """The gradients :class:`_FusedLIF` returns, from dL/dh ``GH [T, M]`` and the per-column
    parameter sums: dL/dx = GH, dL/dv0 = beta GH[0], the sums reduced to the parameter shapes."""
    g_x = GH.view(x_shape) if needs[0] else None
    g_v0 = None
    if needs[1]:
        g_v0 = (GH[0] * (b_s if b_f is None else b_f)).view(step_shape)
        if g_v0.shape != v0.shape:
            g_v0 = g_v0.sum_to_size(v0.shape)
    gb = _reduce_flat(g_beta, beta, step_shape) if g_beta is not None else None
    gt = _reduce_flat(g_th, threshold, step_shape) if g_th is not None else None
    return g_x, g_v0, gb, gt, None


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
