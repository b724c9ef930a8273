"""Chaos and complexity measures of time series, batched over series: the 0-1 test and sample entropy.

0-1 test for chaos (Gottwald & Melbourne 2004, 2009; the correlation method), for a series
phi(1..N) and a frequency c in (pi/5, 4pi/5)::

    p_c(n) = sum_{j<=n} phi(j) cos(j c),   q_c(n) = sum_{j<=n} phi(j) sin(j c)
    M_c(n) = 1/(N - n) sum_{j=1}^{N-n} [(p_c(j+n) - p_c(j))^2 + (q_c(j+n) - q_c(j))^2],  n <= N/10
    D_c(n) = M_c(n) - (E phi)^2 (1 - cos(n c)) / (1 - cos c)
    K_c    = corr(n, D_c(n)),   K = median over the random c

K is near 0 for regular (periodic, quasiperiodic) dynamics and near 1 for chaotic dynamics.
M_c(n) for all n at once uses FFT autocorrelation (O(N log N) per c instead of O(N^2 / 10)).

Sample entropy (Richman & Moorman 2000), as in antropy and nolds: with the N - m templates of
length m and of length m + 1, B = number of pairs i < j of length-m templates within Chebyshev
distance < r, A = the same for length m + 1; SampEn = -log(A / B). r defaults to 0.2 * std(x).
Used in arXiv:2405.06000 and arXiv:2405.05675.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["zero_one_test", "sample_entropy"]


def _as_series(x: Tensor | object, name: str = "x") -> Tensor:
    t = torch.as_tensor(x)
    if not torch.is_floating_point(t):
        t = t.to(torch.float64)
    if t.dim() == 0 or t.shape[-1] == 0:
        raise ValueError(f"{name} must have shape (..., N) with N >= 1 samples, got {tuple(t.shape)}")
    return t


def zero_one_test(
    x: Tensor,
    n_c: int = 100,
    c_range: tuple[float, float] = (math.pi / 5, 4 * math.pi / 5),
    n_cut: int | None = None,
    generator: torch.Generator | None = None,
    max_elements: int = 2**23,
) -> Tensor:
    """Gottwald-Melbourne 0-1 test (correlation method, median over ``n_c`` random c). x: (..., N).

    Returns K with the leading shape of x; NaN where a series contains NaN or is constant (a
    constant series gives D_c = 0 and no correlation; treat it as regular if you need a number).
    ``n_cut`` defaults to N // 10. The random c come from ``generator``; series are processed in
    blocks of about ``max_elements`` complex numbers to bound memory. Oversampled series (many
    samples per oscillation) should be subsampled first, as Gottwald & Melbourne advise.
    """
    x = _as_series(x)
    lead = x.shape[:-1]
    xs = x.reshape(-1, x.shape[-1]).to(torch.float64)
    n = xs.shape[1]
    ncut = n // 10 if n_cut is None else n_cut
    if ncut < 3 or ncut >= n:
        raise ValueError(f"series too short for the 0-1 test: N={n} gives n_cut={ncut}; need N >= 30")
    if n_c < 1:
        raise ValueError(f"n_c must be >= 1, got {n_c}")
    lo, hi = c_range
    out = torch.full((xs.shape[0],), float("nan"), dtype=torch.float64)
    j = torch.arange(1, n + 1, dtype=torch.float64)
    nn = torch.arange(1, ncut + 1, dtype=torch.float64)
    nfft = 1 << (2 * n - 1).bit_length()
    batch_size = max(1, max_elements // (n_c * nfft))
    for s in range(0, xs.shape[0], batch_size):
        phi = xs[s : s + batch_size]  # (b, N)
        b = phi.shape[0]
        c = lo + (hi - lo) * torch.rand(b, n_c, generator=generator, dtype=torch.float64)  # (b, C)
        ang = c[..., None] * j  # (b, C, N)
        p = torch.cumsum(phi[:, None, :] * torch.cos(ang), -1)
        q = torch.cumsum(phi[:, None, :] * torch.sin(ang), -1)
        w = torch.complex(p, q)  # |w(j+n) - w(j)|^2 = |w(j+n)|^2 + |w(j)|^2 - 2 Re(w(j+n) conj w(j))
        a2 = p * p + q * q
        cs = torch.cumsum(a2, -1)
        tot = cs[..., -1:]
        # sum_{j=1}^{N-n} |w(j+n)|^2 = tot - cs[n-1];  sum_{j=1}^{N-n} |w(j)|^2 = cs[N-n-1]
        head = tot - cs[..., :ncut]  # index n-1 -> n = 1..ncut
        tail = torch.flip(cs, [-1])[..., 1 : ncut + 1]  # cs[N-n-1] for n = 1..ncut
        f = torch.fft.fft(w, nfft)
        ac = torch.fft.ifft(f.conj() * f)[..., 1 : ncut + 1].real  # sum_j Re(conj w(j) w(j+n))
        m = (head + tail - 2 * ac) / (n - nn)
        mean = phi.mean(-1)[:, None, None]
        vosc = mean**2 * (1 - torch.cos(nn * c[..., None])) / (1 - torch.cos(c[..., None]))
        d = m - vosc  # (b, C, ncut)
        dc = d - d.mean(-1, keepdim=True)
        nc = nn - nn.mean()
        kc = (dc * nc).sum(-1) / torch.sqrt((dc * dc).sum(-1) * (nc * nc).sum())
        k = kc.median(-1).values
        bad = ~torch.isfinite(phi).all(-1) | (phi.std(-1) == 0)
        k[bad] = float("nan")
        out[s : s + b] = k
    return out.reshape(lead).to(x.dtype)


def sample_entropy(
    x: Tensor, m: int = 2, r: float = 0.2, relative: bool = True, ddof: int = 0, max_pairs: int = 2**24
) -> Tensor:
    """Sample entropy SampEn(m, r) of each series in x (..., N); Chebyshev distance, strict < r.

    ``relative=True``: the tolerance is r * std(x, ddof) per series (antropy: ddof=0; nolds:
    ddof=1); else r is absolute. Returns -log(A/B): NaN when B = 0, inf when A = 0 (antropy's
    conventions). Exact O(N^2) pair counting by offset (all pairs (i, i + o) of one block of offsets o
    at once, as boolean tensors), about ``max_pairs`` comparisons at a time.
    """
    x = _as_series(x)
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    if r <= 0:
        raise ValueError(f"r must be > 0, got {r}")
    lead = x.shape[:-1]
    xs = x.reshape(-1, x.shape[-1]).to(torch.float64)
    n = xs.shape[1]
    if n <= m + 1:
        raise ValueError(f"series too short for sample entropy with m={m}: N={n}")
    tol = (
        r * xs.std(-1, correction=ddof)
        if relative
        else torch.full((xs.shape[0],), float(r), dtype=torch.float64)
    )
    nt = n - m  # templates considered for both lengths
    out = torch.empty(xs.shape[0], dtype=torch.float64)
    block = max(1, max_pairs // n)  # offsets handled at once
    pad = torch.full((nt,), float("inf"), dtype=torch.float64)
    for s in range(xs.shape[0]):
        v = xs[s]
        if not torch.isfinite(v).all():
            out[s] = float("nan")
            continue
        vp = torch.cat([v, pad])
        win = vp.unfold(0, n, 1)  # win[o, i] = v[i + o] (inf past the end), a view
        a_cnt = 0
        b_cnt = 0
        for o0 in range(1, nt, block):
            offs = torch.arange(o0, min(o0 + block, nt))
            close = (win[offs] - v).abs() < tol[s]  # (O, n): |v[i + o] - v[i]| < r
            match = close[:, :nt].clone()
            for lag in range(1, m):
                match &= close[:, lag: lag + nt]
            # template pairs (i, i + o) need i + o <= nt - 1
            valid = torch.arange(nt)[None, :] < (nt - offs)[:, None]
            match &= valid
            b_cnt += int(match.sum())
            a_cnt += int((match & close[:, m: m + nt]).sum())
        if b_cnt == 0:
            out[s] = float("nan")
        elif a_cnt == 0:
            out[s] = float("inf")
        else:
            out[s] = -math.log(a_cnt / b_cnt)
    return out.reshape(lead)
