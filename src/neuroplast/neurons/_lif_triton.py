"""Triton kernels for the fused LIF sequence on CUDA: the whole time loop runs inside one kernel.

On a GPU the op-by-op fused path of :mod:`neuroplast.neurons.spiking` launches a few kernels per
time step, so at T = 100-500 it is bound by launch latency. Here one program owns a block of
neuron columns and walks time in registers:

- :func:`forward`: ``h[t] = beta v[t-1] + x[t]``, ``s[t] = 1[h[t] > fire]``, then the reset
  (``v = h - r s``, ``v = h (1 - s)`` or ``v = h``), storing ``h`` and ``s`` for backward.
- :func:`backward`: the whole BPTT pass for the built-in surrogates (no MPR): per step back in
  time ``e = g'(h - V_th)``, ``dL/dh[t] = e dL/ds[t] + (dv/dh)[t] dL/dv[t]`` with
  ``dL/dv[t] = beta dL/dh[t+1]``, and the per-neuron sums ``dL/dbeta = sum_t dL/dh[t] v[t-1]`` and
  ``dL/dV_th`` accumulated in registers.
- :func:`reverse_scan`: only the recurrence ``g[t] = a[t] + c[t] g[t+1]`` (``a = ds/dh dL/ds``,
  ``c = beta dv/dh``) in place over ``a``, for any other surrogate (or MPR): the caller
  vectorises the rest over time.

Same equations as the CPU path (module docstring of :mod:`neuroplast.neurons.spiking`); Triton
may contract ``beta v + x`` into one fused multiply-add, so membranes can differ from the
op-by-op path in the last bit. Imported only when a CUDA tensor reaches the fused LIF.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from neuroplast.neurons import surrogate as _surrogate

RESET_CODES = {"subtract": 0, "zero": 1, "none": 2}
# built-in surrogate -> (kernel code, its one shape parameter)
_SURROGATE_CODES = {
    _surrogate.ATan: (0, "alpha"), _surrogate.Sigmoid: (1, "alpha"),
    _surrogate.FastSigmoid: (2, "slope"), _surrogate.Triangle: (3, "width"),
}
_BLOCK = 256


@triton.jit
def _lif_forward_kernel(X, V0, BETA, FIRE, R, H, S, VOUT, T, M, RESET: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    v = tl.load(V0 + offs, mask=mask, other=0.0).to(tl.float32)
    beta = tl.load(BETA + offs, mask=mask, other=0.0).to(tl.float32)
    fire = tl.load(FIRE + offs, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(R + offs, mask=mask, other=0.0).to(tl.float32)
    ptr = offs.to(tl.int64)
    for _ in range(T):
        x = tl.load(X + ptr, mask=mask, other=0.0).to(tl.float32)
        h = beta * v + x
        s = (h > fire).to(tl.float32)
        tl.store(H + ptr, h.to(H.dtype.element_ty), mask=mask)
        tl.store(S + ptr, s.to(S.dtype.element_ty), mask=mask)
        if RESET == 0:
            v = h - r * s
        elif RESET == 1:
            v = h - h * s
        else:
            v = h
        ptr += M
    tl.store(VOUT + offs, v.to(VOUT.dtype.element_ty), mask=mask)


@triton.jit
def _reverse_scan_kernel(A, C, G_NEXT, T, M, C_STRIDE_T, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    g = tl.load(G_NEXT + offs, mask=mask, other=0.0).to(tl.float32)
    ptr = (T - 1) * M + offs.to(tl.int64)
    cptr = (T - 1) * C_STRIDE_T + offs.to(tl.int64)
    for _ in range(T):
        a = tl.load(A + ptr, mask=mask, other=0.0).to(tl.float32)
        c = tl.load(C + cptr, mask=mask, other=0.0).to(tl.float32)
        g = a + c * g
        tl.store(A + ptr, g.to(A.dtype.element_ty), mask=mask)
        ptr -= M
        cptr -= C_STRIDE_T


@triton.jit
def _lif_backward_kernel(
    H, S, GS, GV_T, V0, BETA, TH, R, GX, G_BETA, G_TH, T, M, SG_PARAM,
    RESET: tl.constexpr, LIVE_RESET: tl.constexpr, TIED_SUBTRACT: tl.constexpr, SG: tl.constexpr,
    NEED_BETA: tl.constexpr, NEED_TH: tl.constexpr, BLOCK: tl.constexpr,
):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    beta = tl.load(BETA + offs, mask=mask, other=0.0).to(tl.float32)
    th = tl.load(TH + offs, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(R + offs, mask=mask, other=0.0).to(tl.float32)
    gv = tl.load(GV_T + offs, mask=mask, other=0.0).to(tl.float32)  # dL/dv[T-1]
    g_beta = tl.zeros([BLOCK], dtype=tl.float32)
    g_th = tl.zeros([BLOCK], dtype=tl.float32)
    ptr = (T - 1) * M + offs.to(tl.int64)
    for i in range(T):
        h = tl.load(H + ptr, mask=mask, other=0.0).to(tl.float32)
        s = tl.load(S + ptr, mask=mask, other=0.0).to(tl.float32)
        gs = tl.load(GS + ptr, mask=mask, other=0.0).to(tl.float32)
        z = h - th
        if SG == 0:  # ATan
            u = 1.5707963267948966 * SG_PARAM * z
            e = (0.5 * SG_PARAM) / (1.0 + u * u)
        elif SG == 1:  # Sigmoid
            sg = tl.sigmoid(SG_PARAM * z)
            e = SG_PARAM * sg * (1.0 - sg)
        elif SG == 2:  # FastSigmoid
            u = 1.0 + SG_PARAM * tl.abs(z)
            e = 1.0 / (u * u)
        else:  # Triangle
            e = tl.maximum(1.0 - tl.abs(z) / SG_PARAM, 0.0) / SG_PARAM
        if RESET == 0 and LIVE_RESET:
            dv = 1.0 - r * e
        elif RESET == 1 and LIVE_RESET:
            dv = 1.0 - s - h * e
        elif RESET == 1:
            dv = 1.0 - s
        else:
            dv = 1.0
        gh = e * gs + dv * gv
        tl.store(GX + ptr, gh.to(GX.dtype.element_ty), mask=mask)
        if NEED_TH:
            if RESET == 0 and LIVE_RESET:
                inner = gs - r * gv
            elif RESET == 1 and LIVE_RESET:
                inner = gs - h * gv
            else:
                inner = gs
            g_th -= e * inner
            if TIED_SUBTRACT:
                g_th -= s * gv
        if NEED_BETA:
            t = T - 1 - i
            if t > 0:
                hp = tl.load(H + ptr - M, mask=mask, other=0.0).to(tl.float32)
                sp = tl.load(S + ptr - M, mask=mask, other=0.0).to(tl.float32)
                if RESET == 0:
                    v_prev = hp - r * sp
                elif RESET == 1:
                    v_prev = hp - hp * sp
                else:
                    v_prev = hp
            else:
                v_prev = tl.load(V0 + offs, mask=mask, other=0.0).to(tl.float32)
            g_beta += gh * v_prev
        gv = beta * gh
        ptr -= M
    if NEED_BETA:
        tl.store(G_BETA + offs, g_beta.to(G_BETA.dtype.element_ty), mask=mask)
    if NEED_TH:
        tl.store(G_TH + offs, g_th.to(G_TH.dtype.element_ty), mask=mask)


def _per_column(value: float | torch.Tensor, M: int, like: torch.Tensor) -> torch.Tensor:
    """A contiguous [M] vector of ``value`` (a float or a flat per-column tensor)."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype=like.dtype).expand(M).contiguous()
    return torch.full((M,), float(value), dtype=like.dtype, device=like.device)


def forward(
    x: torch.Tensor,
    v0: torch.Tensor,
    beta: float | torch.Tensor,
    fire: float | torch.Tensor,
    reset_by: float | torch.Tensor,
    reset: str,
    H: torch.Tensor,
    S: torch.Tensor,
    v_out: torch.Tensor,
) -> None:
    """Run the LIF sequence ``x [T, M]`` from ``v0 [M]``, filling ``H``, ``S`` and ``v_out``."""
    T, M = x.shape
    x = x.contiguous()
    grid = (triton.cdiv(M, _BLOCK),)
    _lif_forward_kernel[grid](
        x, v0.contiguous(), _per_column(beta, M, x), _per_column(fire, M, x), _per_column(reset_by, M, x),
        H, S, v_out, T, M, RESET=RESET_CODES[reset], BLOCK=_BLOCK,
    )


def surrogate_code(surrogate: _surrogate.Surrogate) -> tuple[int, float] | None:
    """(kernel code, parameter) of a built-in surrogate (exact type), else ``None``."""
    entry = _SURROGATE_CODES.get(type(surrogate))
    return None if entry is None else (entry[0], float(getattr(surrogate, entry[1])))


def backward(
    H: torch.Tensor,
    S: torch.Tensor,
    gS: torch.Tensor,
    gv_final: torch.Tensor | None,
    v0: torch.Tensor,
    beta: float | torch.Tensor,
    threshold: float | torch.Tensor,
    reset_by: float | torch.Tensor,
    *,
    reset: str,
    live_reset: bool,
    tied_subtract: bool,
    surrogate: tuple[int, float],
    need_beta: bool,
    need_threshold: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """BPTT of the LIF sequence (``H``, ``S``: ``[T, M]`` from :func:`forward`, ``gS``: dL/dS):
    ``(dL/dx [T, M], dL/dbeta [M] or None, dL/dV_th [M] or None)``, per column."""
    T, M = H.shape
    gx = torch.empty_like(H)
    g_beta = torch.empty(M, dtype=H.dtype, device=H.device) if need_beta else gx
    g_th = torch.empty(M, dtype=H.dtype, device=H.device) if need_threshold else gx
    gv = torch.zeros(M, dtype=H.dtype, device=H.device) if gv_final is None else gv_final
    grid = (triton.cdiv(M, _BLOCK),)
    _lif_backward_kernel[grid](
        H, S, gS.contiguous(), gv.contiguous(), v0.contiguous(), _per_column(beta, M, H),
        _per_column(threshold, M, H), _per_column(reset_by, M, H), gx, g_beta, g_th, T, M, surrogate[1],
        RESET=RESET_CODES[reset], LIVE_RESET=live_reset, TIED_SUBTRACT=tied_subtract, SG=surrogate[0],
        NEED_BETA=need_beta, NEED_TH=need_threshold, BLOCK=_BLOCK,
    )
    return gx, g_beta if need_beta else None, g_th if need_threshold else None


def reverse_scan(a: torch.Tensor, c: float | torch.Tensor, g_next: torch.Tensor) -> None:
    """In place: ``a[t] <- a[t] + c[t] a[t+1]`` from the last step back, ``a[T] = g_next``.

    ``a``: contiguous ``[T, M]``; ``c``: ``[T, M]``, one ``[M]`` row or a float for every step.
    """
    T, M = a.shape
    if not a.is_contiguous():
        raise ValueError(f"a: expected a contiguous [T, M] tensor (updated in place), strides {a.stride()}")
    if not isinstance(c, torch.Tensor) or c.dim() == 1:
        c_stride = 0
        c = _per_column(c, M, a)
    else:
        c_stride = M
        c = c.contiguous()
    grid = (triton.cdiv(M, _BLOCK),)
    _reverse_scan_kernel[grid](a, c, g_next.contiguous(), T, M, c_stride, BLOCK=_BLOCK)
