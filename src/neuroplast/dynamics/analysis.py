"""Dynamical analysis of maps z' = F(z), batched over parameter sets: fixed points, Jacobians,
stability, bifurcation detection, bifurcation diagrams, Lyapunov exponents, orbit classification
and coexisting attractors.

A *system* is either a callable ``step(z) -> z`` on (B, D) tensors whose rows are independent
(one row per parameter set / initial condition), or an object with such a ``step`` method and,
optionally, ``jacobian(z) -> (B, D, D)``, ``tangent(z, v) -> (B, D)`` and a fast
``run(z0, n_iter, transient, observe, ...)`` (as :class:`~neuroplast.dynamics.networks.MapNetwork`
has). Without them the Jacobian comes from forward-mode autograd (dual tensors), which costs
a few hundred microseconds per step: fine for checks, use analytic tangents for long sweeps.

Multipliers mu of a fixed point (eigenvalues of DF) classify it; a branch loses stability when a
multiplier crosses the unit circle: at mu = +1 (saddle-node / fold), at mu = -1 (period
doubling / flip) or as a complex pair (Neimark-Sacker), as used in arXiv:2405.06000 and
arXiv:2405.05675.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

__all__ = [
    "jacobian",
    "tangent",
    "fixed_points",
    "FixedPoints",
    "periodic_orbits",
    "multipliers",
    "classify_stability",
    "Crossing",
    "detect_crossings",
    "iterate",
    "BifurcationDiagram",
    "bifurcation_diagram",
    "lyapunov_max",
    "lyapunov_spectrum",
    "orbit_period",
    "OrbitClass",
    "classify_orbits",
    "orbit_transitions",
    "coexisting_attractors",
    "stability_losses",
    "match_bifurcations",
    "route_stages",
    "phase_portrait",
]

Step = Callable[[Tensor], Tensor]


def _step_of(system: object) -> Step:
    if hasattr(system, "step") and callable(system.step):
        return system.step
    if callable(system):
        return system  # type: ignore[return-value]
    raise TypeError(f"system must be a callable step(z) or have a .step method, got {type(system).__name__}")


def _check_state(z: Tensor, name: str = "z") -> None:
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} must be a Tensor of shape (B, D), got {type(z).__name__}")
    if z.dim() != 2 or z.shape[0] == 0:
        raise ValueError(f"{name} must have shape (B, D) with B >= 1, got {tuple(z.shape)}")


def tangent(system: object, z: Tensor, v: Tensor) -> Tensor:
    """J(z) v for each row: the system's analytic ``tangent`` if it has one, else forward-mode AD."""
    if hasattr(system, "tangent"):
        return system.tangent(z, v)
    return _jvp(_step_of(system), z, v)


def _jvp(step: Step, z: Tensor, v: Tensor) -> Tensor:
    with fwAD.dual_level():
        out = step(fwAD.make_dual(z, v))
        t = fwAD.unpack_dual(out).tangent
    return torch.zeros_like(z) if t is None else t


def jacobian(system: object, z: Tensor) -> Tensor:
    """Batched Jacobian (B, D, D) of the step at z (B, D); entry [b, i, j] = dF_i/dz_j of row b.

    Uses the system's analytic ``jacobian`` when present, else D forward-mode JVPs (autograd),
    one per basis direction, all rows at once (rows are independent).
    """
    _check_state(z)
    if hasattr(system, "jacobian"):
        return system.jacobian(z)
    step = _step_of(system)
    b, d = z.shape
    cols = []
    for j in range(d):
        e = torch.zeros(b, d, dtype=z.dtype)
        e[:, j] = 1.0
        cols.append(_jvp(step, z, e))
    return torch.stack(cols, -1)


@dataclass
class FixedPoints:
    """Result of :func:`fixed_points`: points (B, D), converged (B,), residual (B,), eigenvalues
    (B, D) complex and a stability label per row."""

    points: Tensor
    converged: Tensor
    residual: Tensor
    eigenvalues: Tensor
    stability: list[str]


def _compose(step: Step, p: int) -> Step:
    def f(z: Tensor) -> Tensor:
        for _ in range(p):
            z = step(z)
        return z

    return f


class _PowerJacobian:
    """F^p with the chain-rule Jacobian J(z_{p-1}) ... J(z_0) from the system's analytic Jacobian."""

    def __init__(self, system: object, step: Step, p: int) -> None:
        self.system, self._step, self.p = system, step, p

    def step(self, z: Tensor) -> Tensor:
        for _ in range(self.p):
            z = self._step(z)
        return z

    def jacobian(self, z: Tensor) -> Tensor:
        j = None
        for _ in range(self.p):
            jz = self.system.jacobian(z)
            j = jz if j is None else jz @ j
            z = self._step(z)
        return j


def fixed_points(
    system: object, guesses: Tensor, tol: float = 1e-11, max_iter: int = 60, period: int = 1
) -> FixedPoints:
    """Root-solve F^p(z) = z by damped Newton from each row of ``guesses`` (B, D), batched.

    ``period`` p > 1 finds period-p points (fixed points of the p-th iterate). Rows that do not
    reach ``tol`` are marked unconverged. Eigenvalues are those of D(F^p) at the solution.
    """
    _check_state(guesses, "guesses")
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    step = _step_of(system)
    fp = _compose(step, period)
    if period == 1:
        jac_sys = system
    elif hasattr(system, "jacobian"):
        jac_sys = _PowerJacobian(system, step, period)
    else:
        jac_sys = fp
    z = guesses.clone()
    eye = torch.eye(z.shape[1], dtype=z.dtype)

    def resid(zz: Tensor) -> Tensor:
        return fp(zz) - zz

    r = resid(z)
    rn = r.abs().amax(1)
    for _ in range(max_iter):
        active = torch.isfinite(rn) & (rn > tol)
        if not active.any():
            break
        j = jacobian(jac_sys, z) - eye
        try:
            dz = torch.linalg.solve(j, -r.unsqueeze(-1)).squeeze(-1)
        except RuntimeError:
            dz = (torch.linalg.pinv(j) @ -r.unsqueeze(-1)).squeeze(-1)
        dz = torch.where(torch.isfinite(dz) & active[:, None], dz, torch.zeros_like(dz))
        lam = torch.ones(z.shape[0], 1, dtype=z.dtype)
        for _ in range(8):  # backtracking: accept the step when the residual does not grow
            zn = z + lam * dz
            rnew = resid(zn)
            rnn = rnew.abs().amax(1)
            ok = torch.isfinite(rnn) & (rnn <= rn * (1 + 1e-9) + tol)
            if ok.all():
                break
            lam = torch.where(ok[:, None], lam, lam / 2)
        z = torch.where(active[:, None], zn, z)
        r = resid(z)
        rn = r.abs().amax(1)
    converged = torch.isfinite(rn) & (rn <= max(tol, 1e3 * tol))
    ev = torch.linalg.eigvals(jacobian(jac_sys, torch.nan_to_num(z)))
    return FixedPoints(z, converged, rn, ev, classify_stability(ev))


def periodic_orbits(system: object, guesses: Tensor, period: int, **kw: float) -> FixedPoints:
    """Period-``period`` points found by Newton on F^period (see :func:`fixed_points`)."""
    return fixed_points(system, guesses, period=period, **kw)


def multipliers(system: object, orbit: Sequence[Tensor]) -> Tensor:
    """Floquet multipliers of a periodic orbit: eigenvalues of J(z_{p-1}) ... J(z_0), (B, D)."""
    prod = None
    for z in orbit:
        j = jacobian(system, z)
        prod = j if prod is None else j @ prod
    if prod is None:
        raise ValueError("orbit must contain at least one point")
    return torch.linalg.eigvals(prod)


def classify_stability(eigenvalues: Tensor, tol: float = 1e-9) -> list[str]:
    """Label each row of multipliers (B, D): stable/unstable node or focus, saddle, non-hyperbolic."""
    if eigenvalues.dim() == 1:
        eigenvalues = eigenvalues.unsqueeze(0)
    mod = eigenvalues.abs()
    cplx = eigenvalues.imag.abs() > 1e-12
    out = []
    for m, c in zip(mod, cplx, strict=True):
        if not torch.isfinite(m).all():
            out.append("undefined")
        elif ((m - 1).abs() < tol).any():
            out.append("non-hyperbolic")
        elif (m < 1).all():
            out.append("stable focus" if c.any() else "stable node")
        elif (m > 1).all():
            out.append("unstable focus" if c.any() else "unstable node")
        else:
            out.append("saddle")
    return out


@dataclass
class Crossing:
    """A multiplier crossing the unit circle between sweep points ``index`` and ``index + 1``."""

    index: int
    param: float
    kind: str  # "saddle-node" | "period-doubling" | "neimark-sacker"
    multiplier: complex
    direction: str  # "destabilising" (|mu| grows past 1) or "stabilising"
    multiplicity: int = 1  # multipliers crossing together at the same point


def _match(prev: Tensor, cur: Tensor) -> Tensor:
    """Reorder ``cur`` (D,) complex so each entry is the nearest still-free one to ``prev``."""
    out = torch.empty_like(cur)
    free = list(range(cur.shape[0]))
    order = torch.argsort(prev.abs(), descending=True).tolist()
    for i in order:
        d = [abs(complex(cur[j]) - complex(prev[i])) for j in free]
        j = free.pop(int(torch.tensor(d).argmin()))
        out[i] = cur[j]
    return out


def detect_crossings(
    params: Tensor, eigenvalues: Tensor, valid: Tensor | None = None, imag_tol: float = 1e-6
) -> list[Crossing]:
    """Detect unit-circle crossings of multipliers along a sweep.

    ``params``: (P,) sweep values in sweep order; ``eigenvalues``: (P, D) multipliers of one branch
    (fixed points or period-p points). Eigenvalues are matched between neighbouring points by
    proximity; a pair (mu_i, mu_{i+1}) with |mu| on both sides of 1 is a crossing, located by
    linear interpolation and typed by where it meets the circle: a complex pair -> Neimark-Sacker,
    near +1 -> saddle-node, near -1 -> period-doubling. ``valid`` (P,) masks unconverged points.
    """
    if params.dim() != 1 or eigenvalues.dim() != 2 or eigenvalues.shape[0] != params.shape[0]:
        raise ValueError(
            f"params must be (P,) and eigenvalues (P, D) with the same P; got "
            f"{tuple(params.shape)} and {tuple(eigenvalues.shape)}"
        )
    if params.shape[0] < 2:
        raise ValueError(f"a sweep needs at least two points, got {params.shape[0]}")
    ok = torch.ones(params.shape[0], dtype=torch.bool) if valid is None else valid.bool()
    out: list[Crossing] = []
    ev = eigenvalues.to(torch.complex128)
    for i in range(params.shape[0] - 1):
        if not (ok[i] and ok[i + 1]) or not (
            torch.isfinite(ev[i].abs()).all() and torch.isfinite(ev[i + 1].abs()).all()
        ):
            continue
        a = ev[i]
        b = _match(a, ev[i + 1])
        seen_pair = False
        for m0, m1 in zip(a.tolist(), b.tolist(), strict=True):
            r0, r1 = abs(m0) - 1, abs(m1) - 1
            if not ((r0 < 0 <= r1) or (r1 < 0 <= r0)):  # a multiplier exactly on the circle counts once
                continue
            t = r0 / (r0 - r1)
            mu = m0 + t * (m1 - m0)
            is_pair = abs(mu.imag) > imag_tol and (abs(m0.imag) > imag_tol or abs(m1.imag) > imag_tol)
            if is_pair:
                if seen_pair or mu.imag < 0:
                    continue
                seen_pair = True
                kind = "neimark-sacker"
            else:
                kind = "saddle-node" if mu.real > 0 else "period-doubling"
            p = float(params[i] + t * (params[i + 1] - params[i]))
            c = Crossing(i, p, kind, complex(mu), "destabilising" if r1 > 0 else "stabilising")
            prev = out[-1] if out else None
            if prev and prev.index == i and prev.kind == kind and abs(prev.multiplier - c.multiplier) < 1e-6:
                prev.multiplicity += 1  # a repeated multiplier (e.g. a symmetric network's transverse modes)
            else:
                out.append(c)
    return out


def iterate(
    system: object,
    z0: Tensor,
    n_iter: int,
    transient: int = 0,
    observe: Sequence[int] | None = None,
    record_every: int = 1,
    bound: float = 1e6,
    **run_kw: object,
):
    """Iterate a batch and record observed coordinates; returns a RunResult (records, state, diverged).

    Delegates to ``system.run`` when present (the fused fast path); otherwise loops over ``step``.
    Rows that become non-finite or exceed ``bound`` are flagged diverged (records NaN).
    """
    _check_state(z0, "z0")
    if hasattr(system, "run"):
        return system.run(
            z0, n_iter, transient, observe=observe, record_every=record_every, bound=bound, **run_kw
        )
    from neuroplast.dynamics.networks import RunResult

    if n_iter < 1 or transient < 0 or transient >= n_iter:
        raise ValueError(f"need n_iter >= 1 and 0 <= transient < n_iter, got {n_iter}, {transient}")
    if not torch.isfinite(z0).all():
        raise ValueError("z0 contains NaN or inf; give finite initial conditions")
    step = _step_of(system)
    obs = list(range(z0.shape[1])) if observe is None else list(observe)
    z = z0.clone()
    diverged = torch.zeros(z.shape[0], dtype=torch.bool)
    recs = []
    for t in range(n_iter):
        z = step(z)
        bad = ~torch.isfinite(z).all(1) | (z.abs() > bound).any(1)
        if bad.any():
            diverged |= bad
            z = torch.where(bad[:, None], torch.zeros_like(z), z)
        if t >= transient and (t - transient) % record_every == 0:
            recs.append(z[:, obs].clone())
    rec = torch.stack(recs, 0)
    rec[:, diverged] = float("nan")
    z[diverged] = float("nan")
    return RunResult(rec, z, diverged)


@dataclass
class BifurcationDiagram:
    """Orbit samples over a one-parameter sweep.

    ``param`` (P,); ``points`` (P, M * n_record) samples of the observed coordinate for the M
    initial conditions of each parameter value; ``diverged`` (P, M): orbits that escaped (shown
    as such, never as chaos).
    """

    param: Tensor
    points: Tensor
    diverged: Tensor

    def plot(self, ax: object, color: str = "k", s: float = 0.05) -> None:
        """Scatter the diagram on a matplotlib axis; diverged parameter values marked in red at the bottom."""
        p = self.param[:, None].expand_as(self.points)
        ax.scatter(
            p.reshape(-1).numpy(), self.points.reshape(-1).numpy(), s=s, c=color, lw=0, rasterized=True
        )
        div = self.diverged.any(1)
        if div.any():
            lo = (
                float(torch.nan_to_num(self.points, nan=float("inf")).min())
                if torch.isfinite(self.points).any()
                else 0
            )
            ax.scatter(self.param[div].numpy(), [lo] * int(div.sum()), marker="|", c="r", label="diverged")


def bifurcation_diagram(
    system: object,
    param: Tensor,
    z0: Tensor,
    n_iter: int,
    transient: int,
    observe: int = 0,
    n_record: int = 100,
    **run_kw: object,
) -> BifurcationDiagram:
    """One-parameter bifurcation diagram, batched: the system's batch is P parameter values times M
    initial conditions (row p*M + m, i.e. ``repeat_interleave`` order); ``z0`` is (P*M, D).

    The last ``n_record`` iterates of coordinate ``observe`` are kept for each orbit.
    """
    if param.dim() != 1 or param.shape[0] == 0:
        raise ValueError(
            f"param must be a non-empty 1-D tensor of sweep values, got shape {tuple(param.shape)}"
        )
    _check_state(z0, "z0")
    p = param.shape[0]
    if z0.shape[0] % p:
        raise ValueError(f"z0 has {z0.shape[0]} rows, not a multiple of the {p} parameter values")
    if n_record > n_iter - transient:
        raise ValueError(f"n_record={n_record} exceeds the {n_iter - transient} iterates after the transient")
    m = z0.shape[0] // p
    res = iterate(system, z0, n_iter, n_iter - n_record, observe=[observe], **run_kw)
    pts = res.records[:, :, 0].t().reshape(p, m * n_record)
    return BifurcationDiagram(param, pts, res.diverged.reshape(p, m))


def lyapunov_max(
    system: object,
    z0: Tensor,
    n_iter: int,
    transient: int = 0,
    renorm_every: int = 1,
    generator: torch.Generator | None = None,
    bound: float = 1e6,
) -> tuple[Tensor, Tensor]:
    """Largest Lyapunov exponent per row by the tangent map with Benettin renormalisation.

    lambda = (1/n) sum_t log ||J(z_t) v_t||, v renormalised every ``renorm_every`` steps; the first
    ``transient`` steps are discarded. Returns (lambda (B,), diverged (B,)); lambda is NaN on
    diverged rows (an escaping orbit is not chaos).
    """
    _check_state(z0, "z0")
    if n_iter <= transient:
        raise ValueError(f"n_iter ({n_iter}) must exceed transient ({transient})")
    if renorm_every < 1:
        raise ValueError(f"renorm_every must be >= 1, got {renorm_every}")
    step = _step_of(system)
    z = z0.clone()
    v = torch.randn(z.shape, generator=generator, dtype=z.dtype)
    v = v / v.norm(dim=1, keepdim=True)
    acc = torch.zeros(z.shape[0], dtype=z.dtype)
    diverged = torch.zeros(z.shape[0], dtype=torch.bool)
    count = 0
    for t in range(n_iter):
        v = tangent(system, z, v)
        z = step(z)
        if (t + 1) % renorm_every == 0:
            nrm = v.norm(dim=1)
            bad = ~torch.isfinite(z).all(1) | (z.abs() > bound).any(1) | ~torch.isfinite(nrm) | (nrm == 0)
            if bad.any():
                diverged |= bad
                z = torch.where(bad[:, None], torch.zeros_like(z), z)
                nrm = torch.where(bad, torch.ones_like(nrm), nrm)
                v = torch.where(bad[:, None], torch.ones_like(v), v)
            if t >= transient:
                acc += torch.log(nrm)
                count += renorm_every
            v = v / nrm[:, None]
    lam = acc / max(count, 1)
    lam[diverged] = float("nan")
    return lam, diverged


def lyapunov_spectrum(
    system: object,
    z0: Tensor,
    n_iter: int,
    transient: int = 0,
    k: int | None = None,
    generator: torch.Generator | None = None,
    bound: float = 1e6,
) -> tuple[Tensor, Tensor]:
    """The k largest Lyapunov exponents per row (QR method): Q <- qr(J Q) every step, sum log|diag R|.

    Returns (exponents (B, k) sorted descending, diverged (B,)). Cost: one batched Jacobian and
    one batched modified Gram-Schmidt of (B, D, k) per step, cheap for the small maps here.
    """
    _check_state(z0, "z0")
    if n_iter <= transient:
        raise ValueError(f"n_iter ({n_iter}) must exceed transient ({transient})")
    b, d = z0.shape
    k = d if k is None else k
    if not 1 <= k <= d:
        raise ValueError(f"k must be in [1, {d}], got {k}")
    step = _step_of(system)
    z = z0.clone()
    q = torch.linalg.qr(torch.randn(b, d, k, generator=generator, dtype=z.dtype))[0]
    acc = torch.zeros(b, k, dtype=z.dtype)
    diverged = torch.zeros(b, dtype=torch.bool)
    for t in range(n_iter):
        j = jacobian(system, z)
        z = step(z)
        bad = ~torch.isfinite(z).all(1) | (z.abs() > bound).any(1) | ~torch.isfinite(j).all(-1).all(-1)
        if bad.any():
            diverged |= bad
            z = torch.where(bad[:, None], torch.zeros_like(z), z)
            j = torch.where(bad[:, None, None], torch.eye(d, dtype=z.dtype).expand(b, d, d), j)
        q, rdiag = _gram_schmidt(j @ q)
        if t >= transient:
            acc += torch.log(rdiag.clamp_min(1e-300))
    lam = acc / (n_iter - transient)
    lam, _ = torch.sort(lam, dim=1, descending=True)
    lam[diverged] = float("nan")
    return lam, diverged


def _gram_schmidt(a: Tensor) -> tuple[Tensor, Tensor]:
    """Batched modified Gram-Schmidt of the columns of a (B, D, k): (Q, |diag R|). For the small k
    here this is far cheaper than a LAPACK QR per matrix."""
    cols = []
    norms = []
    for i in range(a.shape[-1]):
        v = a[..., i]
        for u in cols:
            v = v - (u * v).sum(-1, keepdim=True) * u
        n = v.norm(dim=-1)
        cols.append(v / n.clamp_min(1e-300)[..., None])
        norms.append(n)
    return torch.stack(cols, -1), torch.stack(norms, -1)


def orbit_period(records: Tensor, tol: float = 1e-6, max_period: int = 16) -> Tensor:
    """Smallest p <= max_period with |z_{t+p} - z_t| <= tol (relative to the orbit's scale) over the
    whole record, per row; 0 when none. ``records``: (T, B) or (T, B, d). NaN rows give 0."""
    r = records if records.dim() == 3 else records.unsqueeze(-1)
    t = r.shape[0]
    if t <= max_period:
        raise ValueError(f"records has {t} samples; need more than max_period={max_period}")
    scale = 1.0 + r.abs().amax(0).amax(-1)
    period = torch.zeros(r.shape[1], dtype=torch.long)
    for p in range(max_period, 0, -1):
        d = (r[p:] - r[:-p]).abs().amax(0).amax(-1)
        hit = d <= tol * scale
        period = torch.where(hit, torch.full_like(period, p), period)
    return period


@dataclass
class OrbitClass:
    """Per-row orbit type: code 0 divergent, 1 fixed point, 2 periodic, 3 quasiperiodic, 4 chaotic."""

    code: Tensor
    period: Tensor

    NAMES = ("divergent", "fixed point", "periodic", "quasiperiodic", "chaotic")

    def names(self) -> list[str]:
        out = []
        for c, p in zip(self.code.tolist(), self.period.tolist(), strict=True):
            out.append(f"period-{p}" if c == 2 else self.NAMES[c])
        return out


def classify_orbits(
    records: Tensor,
    lyap: Tensor,
    diverged: Tensor,
    tol: float = 1e-6,
    max_period: int = 16,
    lyap_tol: float = 5e-3,
    loose_tol: float = 1e-3,
) -> OrbitClass:
    """Classify orbits from their records (T, B[, d]), largest Lyapunov exponent (B,) and divergence.

    divergent if flagged; periodic (period p) if the record repeats with period p <= max_period
    within ``tol`` (or within ``loose_tol`` when lambda_max < -lyap_tol: a slowly converging
    periodic orbit near a bifurcation); chaotic if lambda_max > lyap_tol; otherwise
    quasiperiodic (|lambda_max| <= lyap_tol and no short period).
    """
    rec = torch.nan_to_num(records, nan=0.0)
    period = orbit_period(rec, tol, max_period)
    slow = (period == 0) & (lyap < -lyap_tol)
    if slow.any():
        period = torch.where(slow, orbit_period(rec, loose_tol, max_period), period)
    code = torch.full_like(period, 3)
    code[lyap > lyap_tol] = 4
    code[period > 0] = 2
    code[period == 1] = 1
    code[diverged | ~torch.isfinite(lyap)] = 0
    period = torch.where(code == 2, period, torch.where(code == 1, 1, 0))
    return OrbitClass(code, period)


def orbit_transitions(params: Tensor, classes: OrbitClass) -> list[tuple[int, float, str]]:
    """Transitions between neighbouring sweep points, typed as the bifurcation they imply.

    Fixed point / period p -> period 2p: "period-doubling"; fixed point or periodic ->
    quasiperiodic: "neimark-sacker"; quasiperiodic -> chaotic or periodic -> chaotic: "chaos".
    Returns (index, midpoint parameter, kind) for boundary i | i+1 in either direction.
    """
    out = []
    code, per = classes.code.tolist(), classes.period.tolist()
    for i in range(len(code) - 1):
        pair = [(code[i], per[i]), (code[i + 1], per[i + 1])]
        mid = float(params[i] + params[i + 1]) / 2
        for (c0, p0), (c1, p1) in (pair, pair[::-1]):
            kind = None
            if c0 in (1, 2) and c1 == 2 and p1 == 2 * max(p0, 1):
                kind = "period-doubling"
            elif c0 in (1, 2) and c1 == 3:
                kind = "neimark-sacker"
            elif c0 in (2, 3) and c1 == 4:
                kind = "chaos"
            if kind:
                out.append((i, mid, kind))
                break
    return out


def coexisting_attractors(
    records: Tensor, diverged: Tensor | None = None, tol: float = 0.05
) -> tuple[Tensor, int]:
    """Group orbits of ONE parameter set (different initial conditions) into attractors.

    ``records``: (T, M, d) samples after the transient for M initial conditions. Each orbit is
    summarised by the 5/25/50/75/95 % quantiles of every coordinate (invariant under the phase
    along the orbit); orbits whose summaries differ by less than ``tol`` times the overall
    spread (Chebyshev distance) share a label. Diverged orbits get label -1.
    Returns (labels (M,), number of distinct bounded attractors).
    """
    r = records if records.dim() == 3 else records.unsqueeze(-1)
    m = r.shape[1]
    div = torch.zeros(m, dtype=torch.bool) if diverged is None else diverged.clone()
    div |= ~torch.isfinite(r).all(0).all(-1)
    qs = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=r.dtype)
    feats = torch.quantile(torch.nan_to_num(r), qs, dim=0).permute(1, 0, 2).reshape(m, -1)  # (M, 5d)
    ok = ~div
    spread = (
        (torch.nan_to_num(r[:, ok]).amax((0, 1)) - torch.nan_to_num(r[:, ok]).amin((0, 1))).clamp_min(1e-12)
        if ok.any()
        else torch.ones(r.shape[-1], dtype=r.dtype)
    )
    scale = spread.repeat_interleave(5)
    labels = torch.full((m,), -1, dtype=torch.long)
    centres: list[Tensor] = []
    for i in range(m):
        if div[i]:
            continue
        for c, f in enumerate(centres):
            if ((feats[i] - f).abs() / scale).max() < tol:
                labels[i] = c
                break
        else:
            labels[i] = len(centres)
            centres.append(feats[i])
    return labels, len(centres)


def phase_portrait(
    system: object,
    z0: Tensor,
    n_iter: int,
    transient: int,
    coords: tuple[int, int] = (0, 1),
    **run_kw: object,
) -> Tensor:
    """Orbit projected on two coordinates after a transient: (T, B, 2) for plotting (x_i vs y_i, ...)."""
    return iterate(system, z0, n_iter, transient, observe=list(coords), **run_kw).records


def stability_losses(crossings: list[Crossing], eigenvalues: Tensor) -> list[Crossing]:
    """The crossings at which a branch changes between stable (all |mu| < 1) and unstable: the ones
    that change the attractor (crossings of an already unstable branch leave no trace in orbits)."""
    mod = eigenvalues.abs()
    stable = (mod < 1).all(-1)
    return [c for c in crossings if bool(stable[c.index]) != bool(stable[c.index + 1])]


def match_bifurcations(
    crossings: list[Crossing], transitions: list[tuple[int, float, str]], window: int = 3
) -> list[tuple[Crossing, bool]]:
    """Pair each eigenvalue crossing with an orbit transition of the same kind within ``window``
    sweep points (orbits converge slowly next to a bifurcation, so the orbit-based boundary can
    sit a few points away). Returns (crossing, matched) for every crossing."""
    return [
        (c, any(k == c.kind and abs(i - c.index) <= window for i, _, k in transitions)) for c in crossings
    ]


def route_stages(classes: OrbitClass, stages: Sequence[str]) -> int:
    """How many of ``stages`` (names as in :meth:`OrbitClass.names`, e.g. "fixed point", "period-2",
    "quasiperiodic", "chaotic") first appear along the sweep in the given order: the length of the
    longest prefix of ``stages`` whose first occurrences are strictly increasing."""
    names = classes.names()
    last = -1
    count = 0
    for s in stages:
        if s not in names:
            break
        first = names.index(s)
        if first <= last:
            break
        last = first
        count += 1
    return count
