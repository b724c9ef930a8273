"""chialvo-rulkov-chain: a Chialvo - Rulkov - Chialvo chain with bidirectional couplings.

Paper: Ghosh, Nair, Fatoyinbo & Muni 2024, "Dynamical properties of a small heterogeneous chain
network of neurons in discrete time" (arXiv:2405.05675).

Model (:func:`neuroplast.dynamics.networks.chialvo_rulkov_chain`): Chialvo neurons 1 and 3
(x' = x^2 e^{y-x} + k, y' = a y - b x + c; a = 0.89, b = 0.6, c = 0.28, k = 0.03) and a chaotic Rulkov
neuron 2 (x' = alpha/(1+x^2) + y, y' = y - mu (x - sigma); mu = 0.001, sigma = -1) with diffusive
couplings sigma_ij (neuron i drives neuron j). The coupling placement is our reading (the paper's
equations could not be retrieved, only its abstract).

Deviation: the catalog lists alpha in [4.1, 4.5]. There the Rulkov neuron bursts chaotically and, in
our reading of the model, drives the whole chain chaotic for every coupling in [-0.5, 0.5]^2 we
scanned (no periodic window), so the period-doubling and Neimark-Sacker structure cannot be seen.
We use alpha = 2.2 (Rulkov neuron below its bursting regime), where the chain shows both routes.

Sweeps (all batched: parameter values x ``n_ics`` random initial conditions from run.generator):
- 1-D, symmetric coupling s = sigma12 = sigma21 = sigma23 = sigma32 from s_min to s_max. From the
  fixed-point window around s_split upwards: fixed point -> period-doubling cascade (period 2, 4,
  ...) -> chaos; downwards: fixed point -> Neimark-Sacker -> quasiperiodic -> chaos. Fixed-point
  branch by Newton with its multipliers and unit-circle crossings; Lyapunov spectrum (QR) besides
  lambda_max (Benettin); 0-1 test; sample entropy; cross-correlation Gamma_13 and Kuramoto R_13 of the
  outer Chialvo neurons (phases from spikes: x crossing ``spike_threshold`` upwards).
- 2-D parameter map over (s_in = sigma12 = sigma32, into the Rulkov neuron; s_out = sigma21 = sigma23,
  out of it): orbit class, K and lambda_max per point; Gamma_13 heatmap.
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
- synchrony-rises-with-coupling: Spearman correlation of Gamma_13 with s over s >= 0 is >= 0.5.
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

    @classmethod
    def quick(cls) -> Config:
        return cls(
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

    def _net(self, cfg: Config, s_in: torch.Tensor | float, s_out: torch.Tensor | float):
        return chialvo_rulkov_chain(
            sigma12=s_in,
            sigma21=s_out,
            sigma23=s_out,
            sigma32=s_in,
            a=cfg.a,
            b=cfg.b,
            c=cfg.c,
            k=cfg.k,
            alpha=cfg.alpha,
            mu=cfg.mu,
            rulkov_sigma=cfg.rulkov_sigma,
        )

    def _orbits(self, cfg: Config, run: Any, net: Any, n_iter: int, n_record: int) -> dict[str, Any]:
        z0 = net.initial_state(generator=run.generator)
        res = net.run(z0, n_iter, n_iter - n_record, observe=range(4))  # x1, x2, x3, y1
        lam, ldiv = A.lyapunov_max(net, z0, n_iter, n_iter // 2, generator=run.generator)
        div = res.diverged | ldiv
        cls = A.classify_orbits(res.records[..., :3], lam, div, lyap_tol=cfg.lyap_tol, max_period=32)
        kk = S.zero_one_k(res.records[:, :, 0].t(), div, n_c=cfg.n_c, generator=run.generator)
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
            "sync_spearman_r": rank_correlation(s[pos], r13[pos]),
            "n_diverged": int(div.sum()) + int(og["div"].sum()),
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
