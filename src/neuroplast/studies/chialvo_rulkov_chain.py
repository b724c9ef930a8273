"""chialvo-rulkov-chain: a Chialvo - Rulkov - Chialvo chain with bidirectional couplings.

Paper: Ghosh, Nair, Fatoyinbo & Muni 2024, "Dynamical properties of a small heterogeneous chain
network of neurons in discrete time" (arXiv:2405.05675).

Model (:func:`neuroplast.dynamics.networks.chialvo_rulkov_chain`): Chialvo neurons 1 and 3
(x' = x^2 e^{y-x} + k, y' = a y - b x + c; a = 0.89, b = 0.6, c = 0.28, k = 0.03) and a chaotic Rulkov
neuron 2 (x' = alpha/(1+x^2) + y, y' = y - mu (x - sigma); mu = 0.001, sigma = -1) with diffusive
couplings sigma_ij (neuron i drives neuron j).

Sources. The paper's equations could not be retrieved: the stored copies of arxiv.org/html/2405.05675v3
and of the EPJ Plus version (doi 10.1140/epjp/s13360-024-05363-0) end in the introduction. Confirmed:
a six-dimensional map, Chialvo neurons at both ends and a Rulkov neuron in the centre, bidirectional
static linear couplings sigma12, sigma21, sigma23, sigma32, synchrony by cross-correlation and the
Kuramoto order parameter, sample entropy, Lyapunov exponents of the coupled network left open (a summary
of the paper's conclusions, emergentmind.com open problem "Lyapunov exponent analysis for the coupled
Chialvo-Rulkov tri-oscillator network"); coexisting chaotic and period-4 attractors, SN / PD / NS and
codimension-2 points (the abstract). Not confirmed: the coupling form (we use diffusive), the i -> j
reading of sigma_ij (irrelevant on the symmetric sweep, it transposes the 2-D map), the parameter values
and which parameter the paper's diagrams vary.

Alpha. The catalog lists alpha in [4.1, 4.5]. Re-checked in session 3 with long transients (the slow
Rulkov variable, mu = 0.001, needs > 20,000 iterations: at 12,000 the period-4 orbits still drift and read
as quasiperiodic, likely why an earlier scan found no periodic window): at alpha = 4.1 (4.3 and 4.5
alike) the symmetric sweep is chaotic on [-0.325, 0.28], then period-2 (0.2805-0.303), period-4
(0.3035-0.3055), period-8, period-16 and chaos again (0.3075-0.3085), and orbits escape beyond 0.309;
at s = 0.3045 chaotic (lambda ~ 0.02) and period-4 attractors coexist. No stable fixed point was found
at alpha = 4.1 on the symmetric sweep over [-0.6, 0.6] (the lone Rulkov neuron's fixed point x = -1 has
a multiplier of about alpha / 2 > 1), so the fixed-point based routes (period doubling and torus route
from a fixed point, the multiplier crossings) stay at alpha = 2.2 (Rulkov neuron below its bursting
regime), and the catalog's alpha is studied on the window [p_min, p_max] = [0.28, 0.31], chosen from
that scan before the two alpha = 4.1 claims were first run inside the study. In that window the
Chialvo neurons swing far outside their usual range (|x1| ~ 5 on period-2, up to ~100 near the escape):
the window sits at the edge of escape, driven by strong coupling, and may not be where the paper
found its period-4 attractor.

Sweeps (all batched: parameter values x ``n_ics`` random initial conditions from run.generator):
- 1-D, symmetric coupling s = sigma12 = sigma21 = sigma23 = sigma32 from s_min to s_max. From the
  fixed-point window around s_split upwards: fixed point -> period-doubling cascade (period 2, 4,
  ...) -> chaos; downwards: fixed point -> Neimark-Sacker -> quasiperiodic -> chaos. Fixed-point
  branch by Newton with its multipliers and unit-circle crossings; Lyapunov spectrum (QR) besides
  lambda_max (Benettin); 0-1 test; sample entropy; cross-correlation Gamma_13 and Kuramoto R_13 of the
  outer Chialvo neurons (phases from spikes: x crossing ``spike_threshold`` upwards).
- 2-D parameter map over (s_in = sigma12 = sigma32, into the Rulkov neuron; s_out = sigma21 = sigma23,
  out of it): orbit class, K and lambda_max per point; Gamma_13 heatmap.
- catalog alpha (alpha_paper = 4.1): symmetric sweep over [p_min, p_max] with p_ics random initial
  conditions per point: classes per point, the dominant bounded class, points with chaos and period-4.
Baseline: the uncoupled maps (s = 0; the map's origin).

Claims (each on every seed, thresholds fixed in advance):
- period-doubling-route: fixed point, period-2, period-4, chaos in this order above s_split (4 stages);
- torus-route: fixed point, quasiperiodic, chaos in this order below s_split (3 stages);
- zero-one-vs-lyapunov: (K > 0.5) agrees with (lambda_max > lyap_tol) on >= 95 % of the non-divergent
  orbits of the map and the sweep whose lambda_max has a definite sign (|lambda_max| > lyap_tol).
  Quasiperiodic orbits (lambda_max ~ 0) are reported apart (``k_lyap_agreement_incl_quasiperiodic``,
  ``mean_k_quasiperiodic``): here the 0-1 test gives K ~ 1 on many of them (slow Rulkov variable), a
  known weakness of the test, not hidden;
- parameter-map-regimes: the map has periodic, quasiperiodic and chaotic regions (3 types);
- bifurcations-match-eigenvalues: every stability-changing crossing of the fixed-point branch has an
  orbit transition of the same type within 3 sweep points (fraction 1.0; PD and NS both found);
- coexisting-attractors: some sweep point has >= 2 distinct attractors from the random initial conditions;
- spectrum-matches-benettin: mean |lambda_1 (QR spectrum) - lambda_max (Benettin)| <= 0.01;
- paper-alpha-period-doubling-cascade: at alpha = 4.1, period-2, period-4, period-8, chaos appear in this
  order (dominant class per point, from the first period-2 point on; 4 stages);
- chaos-period4-coexist (the paper's abstract): at alpha = 4.1 some s has a chaotic and a period-4 orbit
  among its random initial conditions (>= 1 such point);
- synchrony-rises-with-coupling: Spearman correlation of Gamma_13 with s over s >= 0 is >= 0.5. Not from
  the paper's text (what the paper reports about synchrony against coupling could not be retrieved); kept
  as first stated, and it fails: for 0 < s < ~0.05 the outer neurons are exactly synchronised (x1 = x3 is
  invariant by symmetry and attracting under the common drive of neuron 2; Gamma_13 = 1), past the
  period doubling they lock in phase or in anti-phase (Gamma_13 = +1 or -1 on period-2, -0.94 on
  period-4), and in chaos they decorrelate (mean Gamma_13 ~ 0). Synchrony falls with coupling in this
  model; the neighbour pairs (Gamma_12, Gamma_23: ``sync_spearman_gamma_neighbours`` about -0.3) and
  R_13 (about -0.75) fall too. ``gamma_13_by_class`` and ``outer_complete_sync_fraction`` report this.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from neuroplast.dynamics import analysis as A
from neuroplast.dynamics import sweeps as S
from neuroplast.dynamics.networks import chialvo_rulkov_chain
from neuroplast.metrics.chaos import sample_entropy
from neuroplast.metrics.sync import (
    cross_correlation,
    kuramoto_order,
    phases_from_events,
    rank_correlation,
    spike_events,
)
from neuroplast.studies import Claim, Study, register

UP = ("fixed point", "period-2", "period-4", "chaotic")
DOWN = ("fixed point", "quasiperiodic", "chaotic")


@dataclass(frozen=True)
class Config:
    a: float = 0.89
    b: float = 0.6
    c: float = 0.28
    k: float = 0.03
    alpha: float = 2.2
    mu: float = 0.001
    rulkov_sigma: float = -1.0
    s_min: float = -0.3
    s_max: float = 0.2
    s_split: float = 0.065  # inside the fixed-point window: the two routes start here
    n_s: int = 401
    n_ics: int = 6
    n_iter: int = 40_000
    n_record: int = 4_000
    sampen_len: int = 2_000
    n_grid: int = 41
    grid_iter: int = 20_000
    grid_record: int = 2_000
    spectrum_iter: int = 20_000
    n_c: int = 100
    lyap_tol: float = 5e-3
    window: int = 3
    spike_threshold: float = 1.0
    # the catalog's alpha: symmetric sweep over the window where our scan found the periodic orbits
    alpha_paper: float = 4.1
    p_min: float = 0.28
    p_max: float = 0.31
    n_p: int = 121
    p_ics: int = 24
    p_iter: int = 40_000
    p_record: int = 2_000

    @classmethod
    def quick(cls) -> Config:
        return cls(
            n_p=61,
            p_ics=16,
            p_iter=30_000,
            n_s=121,
            n_ics=4,
            n_iter=6_000,
            n_record=2_000,
            sampen_len=1_000,
            n_grid=13,
            grid_iter=5_000,
            grid_record=1_000,
            spectrum_iter=3_000,
        )


@register
class ChialvoRulkovChain(Study):
    key = "chialvo-rulkov-chain"
    title = "Chialvo-Rulkov-Chialvo chain: period doubling, torus route, 0-1 test, Lyapunov spectrum"
    arxiv = "2405.05675"
    family = "F"
    Config = Config
    threads = 1  # per-step ops on tiny batches: a second intra-op thread only spins
    claims = (
        Claim(
            "period-doubling-route",
            "fixed point -> period-2 -> period-4 -> chaos with rising coupling",
            lambda s: s["route_up_stages"],
            ">=",
            4,
        ),
        Claim(
            "torus-route",
            "fixed point -> quasiperiodic -> chaos with falling coupling",
            lambda s: s["route_down_stages"],
            ">=",
            3,
        ),
        Claim(
            "zero-one-vs-lyapunov",
            "0-1 test (K > 0.5) agrees with lambda_max > 0 on >= 95% of orbits",
            lambda s: s["k_lyap_agreement"],
            ">=",
            0.95,
        ),
        Claim(
            "parameter-map-regimes",
            "the (s_in, s_out) map has periodic, quasiperiodic and chaotic regions",
            lambda s: s["map_regime_types"],
            ">=",
            3,
        ),
        Claim(
            "bifurcations-match-eigenvalues",
            "every stability-changing multiplier crossing (PD and NS found) "
            "has an orbit transition of the same type",
            lambda s: s["bifurcation_match"],
            ">=",
            1.0,
        ),
        Claim(
            "coexisting-attractors",
            "some coupling has >= 2 distinct attractors",
            lambda s: s["max_attractors"],
            ">=",
            2,
        ),
        Claim(
            "spectrum-matches-benettin",
            "QR spectrum's lambda_1 matches Benettin's lambda_max",
            lambda s: s["spectrum_vs_benettin"],
            "<=",
            0.01,
        ),
        Claim(
            "paper-alpha-period-doubling-cascade",
            "at alpha = 4.1: period-2 -> period-4 -> period-8 -> chaos with rising s",
            lambda s: s["paper_route_stages"],
            ">=",
            4,
        ),
        Claim(
            "chaos-period4-coexist",
            "at alpha = 4.1 some coupling has both a chaotic and a period-4 attractor (the paper's abstract)",
            lambda s: s["paper_coexist_points"],
            ">=",
            1,
        ),
        Claim(
            "synchrony-rises-with-coupling",
            "Gamma_13 rises with s >= 0 (Spearman >= 0.5)",
            lambda s: s["sync_spearman_gamma"],
            ">=",
            0.5,
        ),
    )

    def validate(self, cfg: Config) -> None:
        if not cfg.s_min < cfg.s_split < cfg.s_max or cfg.n_s < 3:
            raise ValueError("need s_min < s_split < s_max and n_s >= 3")
        if (
            not 100 <= cfg.n_record < cfg.n_iter
            or cfg.sampen_len > cfg.n_record
            or cfg.grid_record >= cfg.grid_iter
        ):
            raise ValueError(
                "need 100 <= n_record < n_iter, sampen_len <= n_record and grid_record < grid_iter"
            )

        if not cfg.p_min < cfg.p_max or cfg.n_p < 3 or cfg.p_ics < 1 or not 100 <= cfg.p_record < cfg.p_iter:
            raise ValueError(
                "need p_min < p_max, n_p >= 3, p_ics >= 1 and 100 <= p_record < p_iter, got "
                f"{cfg.p_min}, {cfg.p_max}, {cfg.n_p}, {cfg.p_ics}, {cfg.p_record}, {cfg.p_iter}"
            )

    def _net(
        self,
        cfg: Config,
        s_in: torch.Tensor | float,
        s_out: torch.Tensor | float,
        alpha: float | None = None,
    ):
        return chialvo_rulkov_chain(
            sigma12=s_in,
            sigma21=s_out,
            sigma23=s_out,
            sigma32=s_in,
            a=cfg.a,
            b=cfg.b,
            c=cfg.c,
            k=cfg.k,
            alpha=cfg.alpha if alpha is None else alpha,
            mu=cfg.mu,
            rulkov_sigma=cfg.rulkov_sigma,
        )

    def _orbits(
        self, cfg: Config, run: Any, net: Any, n_iter: int, n_record: int, zero_one: bool = True
    ) -> dict[str, Any]:
        z0 = net.initial_state(generator=run.generator)
        res = net.run(z0, n_iter, n_iter - n_record, observe=range(4))  # x1, x2, x3, y1
        lam, ldiv = A.lyapunov_max(net, z0, n_iter, n_iter // 2, generator=run.generator)
        div = res.diverged | ldiv
        cls = A.classify_orbits(res.records[..., :3], lam, div, lyap_tol=cfg.lyap_tol, max_period=32)
        kk = (
            S.zero_one_k(res.records[:, :, 0].t(), div, n_c=cfg.n_c, generator=run.generator)
            if zero_one
            else None
        )
        return {"z0": z0, "res": res, "lam": lam, "div": div, "cls": cls, "K": kk}

    def run(self, cfg: Config, run: Any) -> dict:
        t0 = time.perf_counter()
        m = cfg.n_ics
        s = torch.linspace(cfg.s_min, cfg.s_max, cfg.n_s, dtype=torch.float64)
        net = self._net(cfg, s, s)
        rep = net.repeat(m)
        o = self._orbits(cfg, run, rep, cfg.n_iter, cfg.n_record)
        res, lam, div, cls, kk = o["res"], o["lam"], o["div"], o["cls"], o["K"]
        first = torch.arange(cfg.n_s) * m
        cls1 = A.OrbitClass(cls.code[first], cls.period[first])
        split = int(torch.searchsorted(s, torch.tensor(cfg.s_split, dtype=torch.float64)))
        up = A.OrbitClass(cls1.code[split:], cls1.period[split:])
        down = A.OrbitClass(cls1.code[: split + 1].flip(0), cls1.period[: split + 1].flip(0))
        run.log(0, stage="sweep")
        run.timing("elapsed_s", {"sweep": time.perf_counter() - t0})

        # Lyapunov spectrum (QR) on the first orbit of every coupling, against Benettin's lambda_max
        spec, sdiv = A.lyapunov_spectrum(
            net, o["z0"][first], cfg.spectrum_iter, cfg.spectrum_iter // 2, generator=run.generator
        )
        lam_b, bdiv = A.lyapunov_max(
            net, o["z0"][first], cfg.spectrum_iter, cfg.spectrum_iter // 2, generator=run.generator
        )
        both = ~sdiv & ~bdiv
        spec_gap = float((spec[both, 0] - lam_b[both]).abs().mean())
        run.log(1, stage="spectrum")
        run.timing("elapsed_s", {"spectrum": time.perf_counter() - t0})

        # fixed-point branch: natural continuation outwards from the fixed point at s_split (batched:
        # every pass re-solves the rows whose solution is not yet continuous with its inner neighbour,
        # from that neighbour's solution)
        last = torch.nan_to_num(res.state[first])
        fp = A.fixed_points(net, last[split].expand_as(last).clone())
        idx = torch.arange(cfg.n_s)
        inner = torch.where(idx > split, idx - 1, torch.where(idx < split, idx + 1, idx))
        for _ in range(cfg.n_s):
            jump = (fp.points - fp.points[inner]).abs().amax(1)
            cont = fp.converged & (jump < 0.05)
            good = torch.zeros(cfg.n_s, dtype=torch.bool)
            good[split] = bool(fp.converged[split])
            for i in range(split + 1, cfg.n_s):
                good[i] = good[i - 1] and bool(cont[i])
            for i in range(split - 1, -1, -1):
                good[i] = good[i + 1] and bool(cont[i])
            retry = ~good & good[inner]
            if not retry.any():
                break
            fp2 = A.fixed_points(net, fp.points[inner].clone())
            fp.points = torch.where(retry[:, None], fp2.points, fp.points)
            fp.eigenvalues = torch.where(retry[:, None], fp2.eigenvalues, fp.eigenvalues)
            fp.converged = torch.where(retry, fp2.converged, fp.converged)
            if not (retry & fp2.converged).any():
                break
        bif = S.branch_bifurcations(s, [(fp.eigenvalues, good)], cls1, cfg.window)
        run.log(2, stage="bifurcations")
        run.timing("elapsed_s", {"bifurcations": time.perf_counter() - t0})

        # coexisting attractors, sample entropy, synchrony of the outer neurons along the sweep
        n_attr, _ = S.attractors_per_point(res.records[..., :3], div, cfg.n_s)
        best = int(torch.tensor(n_attr).argmax())
        x1 = res.records[:, :, 0].t()
        se = sample_entropy(x1[first, -cfg.sampen_len :])
        outer = res.records[:, first][:, :, [0, 2]].permute(1, 2, 0)  # (P, 2, T)
        g13 = cross_correlation(outer)
        _, r13 = kuramoto_order(phases_from_events(spike_events(outer, cfg.spike_threshold)))
        pos = s >= 0
        g12 = cross_correlation(res.records[:, first][:, :, [0, 1]].permute(1, 2, 0))
        g23 = cross_correlation(res.records[:, first][:, :, [1, 2]].permute(1, 2, 0))
        gap13 = (outer[:, 0] - outer[:, 1]).abs().amax(-1)  # max |x1 - x3| after the transient
        moving = pos & (cls1.code >= 2)  # s >= 0, not a fixed point (Gamma undefined there), not divergent
        synced = moving & (gap13 < 1e-8)  # outer neurons completely synchronised (x1 = x3)
        names1 = cls1.names()
        g13_by_class = {
            n: S.finite_mean(g13[moving & torch.tensor([m_ == n for m_ in names1])])
            for n in sorted({names1[i] for i in torch.nonzero(moving).flatten().tolist()})
        }
        run.log(3, stage="sweep measures")
        run.timing("elapsed_s", {"sweep measures": time.perf_counter() - t0})

        # 2-D parameter map over (s_in, s_out)
        g = torch.linspace(cfg.s_min, cfg.s_max, cfg.n_grid, dtype=torch.float64)
        gi, go = torch.meshgrid(g, g, indexing="ij")
        gnet = self._net(cfg, gi.reshape(-1), go.reshape(-1))
        og = self._orbits(cfg, run, gnet, cfg.grid_iter, cfg.grid_record)
        gcode = og["cls"].code
        types = {
            "periodic": bool(((gcode == 1) | (gcode == 2)).any()),
            "quasiperiodic": bool((gcode == 3).any()),
            "chaotic": bool((gcode == 4).any()),
        }
        gouter = og["res"].records[:, :, [0, 2]].permute(1, 2, 0)
        g13_map = cross_correlation(gouter)
        g13_map[og["div"]] = float("nan")
        run.log(4, stage="parameter map")
        run.timing("elapsed_s", {"parameter map": time.perf_counter() - t0})

        # the catalog's alpha (4.1): symmetric sweep over [p_min, p_max], p_ics orbits per point
        pv = torch.linspace(cfg.p_min, cfg.p_max, cfg.n_p, dtype=torch.float64)
        pnet = self._net(cfg, pv, pv, alpha=cfg.alpha_paper).repeat(cfg.p_ics)
        op = self._orbits(cfg, run, pnet, cfg.p_iter, cfg.p_record, zero_one=False)
        paper = self._paper_regime(cfg, pv, op)
        run.log(5, stage="catalog alpha")
        run.timing("elapsed_s", {"catalog alpha": time.perf_counter() - t0})

        # 0-1 test against the sign of lambda_max on the sweep and the map together
        agreement = S.regime_agreement(
            torch.cat([kk, og["K"]]),
            torch.cat([lam, og["lam"]]),
            torch.cat([div, og["div"]]),
            A.OrbitClass(torch.cat([cls.code, gcode]), torch.cat([cls.period, og["cls"].period])),
            lyap_tol=cfg.lyap_tol,
        )
        se_ch, se_per = S.regime_means(se, cls1)

        self._figures(cfg, run, s, o, first, spec, kk, se, g, og, g13_map, g13, r13)
        fig = run.figure(figsize=(8, 5))
        ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        S.plot_bifurcation_lyapunov(ax1, ax2, pv, op["res"].records[:, :, 0], op["lam"], op["div"])
        ax1.set_yscale("symlog", linthresh=1.0)  # |x1| grows from ~5 to ~100 towards the escape
        ax1.set_ylabel("x1 (Chialvo)")
        ax1.set_title(f"alpha={cfg.alpha_paper}: {cfg.p_ics} random initial conditions per coupling")
        ax2.set_xlabel("s = sigma12 = sigma21 = sigma23 = sigma32")
        run.save_figure("catalog_alpha_bifurcation", fig)
        names = cls1.names()
        zero = int(torch.argmin(s.abs()))
        return {
            "s": s.tolist(),
            "orbit_class": names,
            "class_counts": S.class_counts(names),
            "lyapunov": S.finite_or_none(lam[first].tolist()),
            "lyapunov_spectrum": [S.finite_or_none(row) for row in spec.tolist()],
            "zero_one_k": S.finite_or_none(kk[first].tolist()),
            "sample_entropy": S.finite_or_none(se.tolist()),
            "gamma_13": S.finite_or_none(g13.tolist()),
            "kuramoto_r_13": S.finite_or_none(r13.tolist()),
            "route_up_stages": A.route_stages(up, UP),
            "route_down_stages": A.route_stages(down, DOWN),
            **agreement,
            "sampen_chaotic_minus_periodic": se_ch - se_per,
            **bif.summary(),
            "max_attractors": max(n_attr),
            "s_most_attractors": float(s[best]),
            "attractors_at_best": cls.names()[best * m : (best + 1) * m],
            "spectrum_vs_benettin": spec_gap,
            "map_class_counts": S.class_counts(og["cls"]),
            "map_regime_types": sum(types.values()),
            "uncoupled": {
                "s": float(s[zero]),
                "class": names[zero],
                "K": float(kk[first][zero]),
                "lyapunov": float(lam[first][zero]),
            },
            "sync_spearman_gamma": rank_correlation(s[pos], g13[pos]),
            "sync_spearman_gamma_neighbours": rank_correlation(s[pos], (g12[pos] + g23[pos]) / 2),
            "gamma_13_by_class": g13_by_class,
            "outer_complete_sync_fraction": float(synced.sum()) / max(int(moving.sum()), 1),
            "outer_complete_sync_s_max": float(s[synced].max()) if synced.any() else None,
            **paper,
            "sync_spearman_r": rank_correlation(s[pos], r13[pos]),
            "n_diverged": int(div.sum()) + int(og["div"].sum()),
        }

    def _paper_regime(self, cfg: Config, pv: torch.Tensor, op: dict[str, Any]) -> dict[str, Any]:
        """Per coupling of the catalog-alpha sweep: the orbit classes of its ``p_ics`` orbits, the
        dominant bounded class (most frequent; the first orbit's class breaks ties), the cascade's
        stages from the first period-2 point on, and the points where chaos and period-4 coexist."""
        m = cfg.p_ics
        names = op["cls"].names()
        counts, dom_idx, coexist, lam_chaos = [], [], [], []
        for i in range(cfg.n_p):
            row = names[i * m : (i + 1) * m]
            c = {n: row.count(n) for n in sorted(set(row))}
            counts.append(c)
            bounded = [n for n in row if n != "divergent"]
            top = max(bounded, key=lambda n: (bounded.count(n), -bounded.index(n))) if bounded else row[0]
            dom_idx.append(i * m + row.index(top))
            if "chaotic" in c and "period-4" in c:
                coexist.append(float(pv[i]))
                lam_chaos += [float(op["lam"][i * m + j]) for j, n in enumerate(row) if n == "chaotic"]
        dom = A.OrbitClass(op["cls"].code[dom_idx], op["cls"].period[dom_idx])
        dom_names = dom.names()
        start = dom_names.index("period-2") if "period-2" in dom_names else cfg.n_p
        tail = A.OrbitClass(dom.code[start:], dom.period[start:])
        return {
            "paper_alpha": cfg.alpha_paper,
            "paper_s": pv.tolist(),
            "paper_class_counts_per_s": counts,
            "paper_dominant_class": dom_names,
            "paper_class_counts": S.class_counts(names),
            "paper_route_stages": A.route_stages(tail, ("period-2", "period-4", "period-8", "chaotic")),
            "paper_coexist_points": len(coexist),
            "paper_coexist_s": coexist,
            "paper_coexist_mean_lyapunov_chaotic": sum(lam_chaos) / len(lam_chaos) if lam_chaos else None,
        }

    def _figures(
        self,
        cfg: Config,
        run: Any,
        s: torch.Tensor,
        o: dict[str, Any],
        first: torch.Tensor,
        spec: torch.Tensor,
        kk: torch.Tensor,
        se: torch.Tensor,
        g: torch.Tensor,
        og: dict[str, Any],
        g13_map: torch.Tensor,
        g13: torch.Tensor,
        r13: torch.Tensor,
    ) -> None:
        res = o["res"]
        fig = run.figure(figsize=(8, 7))
        ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1, 1]})
        S.plot_bifurcation_lyapunov(ax1, ax2, s, res.records[:, :, 0], o["lam"], o["div"])
        ax1.set_ylabel("x1 (Chialvo)")
        ax1.set_title(f"Chialvo-Rulkov-Chialvo chain, alpha={cfg.alpha}")
        ax3.plot(s.numpy(), spec.numpy(), lw=0.8)
        ax3.set_ylabel("spectrum (QR)")
        ax3.set_xlabel("s = sigma12 = sigma21 = sigma23 = sigma32")
        run.save_figure("bifurcation_lyapunov", fig)

        fig = run.figure(figsize=(12, 3))
        stages = ("fixed point", "quasiperiodic", "period-2", "period-4", "chaotic")
        axes = fig.subplots(1, len(stages))
        cls1 = A.OrbitClass(o["cls"].code[first], o["cls"].period[first])
        orbit = res.records[:, first]  # the first orbit of each coupling
        S.plot_phase_portraits(axes, stages, cls1, s, orbit[..., 0], orbit[..., 3], "s", labels=("x1", "y1"))
        run.save_figure("phase_portraits", fig)

        fig = run.figure(figsize=(8, 6))
        ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True)
        S.plot_zero_one_sampen(ax1, ax2, s, kk[first], se)
        ax2.set_ylabel("SampEn")
        ax3.plot(s.numpy(), g13.numpy(), ".", ms=3, c="C2", label="Gamma_13")
        ax3.plot(s.numpy(), r13.numpy(), ".", ms=3, c="C3", label="R_13")
        ax3.legend(fontsize=7)
        ax3.set_xlabel("s")
        run.save_figure("k_sampen_sync_vs_s", fig)

        n = cfg.n_grid
        ext = [float(g[0]), float(g[-1]), float(g[0]), float(g[-1])]
        fig = run.figure(figsize=(13, 4))
        axes = fig.subplots(1, 3)
        im = axes[0].imshow(
            og["cls"].code.reshape(n, n).numpy(), origin="lower", extent=ext, cmap="viridis", vmin=0, vmax=4
        )
        axes[0].set_title("class: 0 div, 1 fp, 2 periodic, 3 quasi, 4 chaos", fontsize=8)
        fig.colorbar(im, ax=axes[0])
        im = axes[1].imshow(og["lam"].reshape(n, n).numpy(), origin="lower", extent=ext, cmap="coolwarm")
        axes[1].set_title("lambda_max")
        fig.colorbar(im, ax=axes[1])
        im = axes[2].imshow(g13_map.reshape(n, n).numpy(), origin="lower", extent=ext, vmin=-1, vmax=1)
        axes[2].set_title("cross-correlation Gamma_13")
        fig.colorbar(im, ax=axes[2])
        for ax in axes:
            ax.set_xlabel("s_out = sigma21 = sigma23")
            ax.set_ylabel("s_in = sigma12 = sigma32")
        run.save_figure("parameter_map_and_synchrony", fig)
