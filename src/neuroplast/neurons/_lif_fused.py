"""The fused multi-step LIF behind :func:`neuroplast.neurons.spiking.lif_multistep`: one custom
autograd function over the whole sequence (equations in the spiking module's docstring), with the
time loops in Triton kernels on CUDA (:mod:`._lif_triton`) and op-by-op loops elsewhere.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from neuroplast.neurons.mpr import mpr, mpr_grad, mpr_inverse
from neuroplast.neurons.surrogate import Surrogate

# Fused kernels split each time step into column blocks and the backward into time chunks that
# stay below PyTorch's intra-op parallel grain (32768 elements): every op then runs inline.
_GRAIN = 32768
_BLOCK = 16384


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
            fire_s, fire_f = _flat_param(mpr_inverse(threshold.detach(), cfg.mpr), step_shape)
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
