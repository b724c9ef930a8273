"""chialvo-ring-star: the route to chaos of the smallest higher-order ring-star network of Chialvo neurons.

Paper: Nair, Ghosh, Fatoyinbo & Muni 2024, "On the higher-order smallest ring star network of Chialvo
neurons under diffusive couplings" (arXiv:2405.06000).

Model (:func:`neuroplast.dynamics.networks.ring_star_network`): one centre and three peripheral Chialvo
neurons (x' = x^2 e^{y-x} + k, y' = a y - b x + c; a = 0.89, b = 0.18, c = 0.28) on the complete graph K4,
with pairwise diffusive coupling sigma1 (x_j - x_i) on star and ring edges and 2-simplex diffusive
coupling sigma2 (x_j + x_l - 2 x_i) on the four triangles. The paper's exact coupling equations could
not be retrieved (only its abstract); see the constructor's docstring for our reading. On K4 the linear
higher-order term equals a pairwise term of strength 2 sigma2 (checked in the summary as
``pairwise_equivalence_max_diff``), so "pairwise only" with sigma1 + 2 sigma2 is the same network.

Sweep: the bias k, decreasing from ``k_max`` to ``k_min``, batched (every k value x ``n_ics`` random
initial conditions iterated at once), at fixed sigma1 = 0.1, sigma2 = 0.05. Our scan found there the
paper's route: a synchronous fixed point loses stability by period doubling (a transverse, anti-phase
mode: multiplier -1), the period-2 orbit undergoes a Neimark-Sacker bifurcation into two cyclic closed
invariant curves, which break into chaos, then orbits escape (flagged as divergent, never as chaos).
Per sweep point: orbit class (fixed point / period-p / quasiperiodic / chaotic / divergent), largest
Lyapunov exponent (analytic tangent map, Benettin), 0-1 test K (correlation method, median over 100
random c from run.generator), sample entropy (m = 2, r = 0.2 std) of the centre's x; fixed-point and
period-2 branches by Newton with their multipliers, and unit-circle crossings typed SN / PD / NS.
Synchrony: cross-correlation Gamma and Kuramoto R (phases from spike times, x crossing ``spike_threshold``
upwards) over a (sigma1, sigma2) grid at the paper's k = 0.03. Baseline: the uncoupled network on the
same k sweep (no Neimark-Sacker stage without coupling).

Claims (each on every seed, thresholds fixed in advance):
- route-to-chaos: fixed point, period-2, quasiperiodic, chaotic appear in this order (4 stages);
- zero-one-vs-lyapunov: (K > 0.5) agrees with (lambda_max > lyap_tol) on >= 95 % of the non-divergent
  orbits whose lambda_max has a definite sign (|lambda_max| > lyap_tol); the agreement including the
  quasiperiodic orbits is reported too (``k_lyap_agreement_incl_quasiperiodic``);
- k-regular / k-chaotic: mean K <= 0.1 on periodic orbits (period >= 2) and >= 0.9 on chaotic ones;
- bifurcations-match-eigenvalues: every stability-changing multiplier crossing of the two branches has an
  orbit transition of the same type within 3 sweep points (fraction 1.0), and both PD and NS are found;
- coexisting-chaotic-attractors: at some k, >= 2 distinct chaotic attractors from the random initial
  conditions;
- sampen-rises-with-chaos: mean sample entropy on chaotic orbits exceeds that on periodic ones;
- synchrony-rises-with-coupling: Spearman correlation of Gamma with the effective coupling
  sigma1 + 2 sigma2 over the grid >= 0.5.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from neuroplast.dynamics import analysis as A
from neuroplast.dynamics import sweeps as S
from neuroplast.dynamics.networks import ring_star_network
from neuroplast.metrics.chaos import sample_entropy
from neuroplast.metrics.sync import (
    cross_correlation,
    kuramoto_order,
    phases_from_events,
    rank_correlation,
    spike_events,
)
from neuroplast.studies import Claim, Study, register

STAGES = ("fixed point", "period-2", "quasiperiodic", "chaotic")


@dataclass(frozen=True)
class Config:
    a: float = 0.89
    b: float = 0.18
    c: float = 0.28
    sigma1: float = 0.1
    sigma2: float = 0.05
    k_max: float = 0.02  # the sweep runs from k_max down to k_min
    k_min: float = -0.06
    n_k: int = 400
    n_ics: int = 6  # random initial conditions per k
    n_iter: int = 100_000
    n_record: int = 4_000  # iterates kept per orbit (0-1 test, periods, attractors)
    sampen_len: int = 2_000
    n_c: int = 100  # random frequencies of the 0-1 test
    lyap_tol: float = 5e-3
    window: int = 3  # sweep points allowed between an eigenvalue crossing and its orbit transition
    sync_k: float = 0.03
    sync_sigma1_max: float = 0.02  # the chaotic nodes lock together already at weak coupling
    sync_sigma2_max: float = 0.01
    n_sync: int = 21
    sync_iter: int = 20_000
    sync_record: int = 4_000
    spike_threshold: float = 1.0

    @classmethod
    def quick(cls) -> Config:
        return cls(
            n_k=121,
            n_ics=4,
            n_iter=8_000,
            n_record=2_000,
            sampen_len=1_000,
            n_sync=7,
            sync_iter=4_000,
            sync_record=2_000,
        )


@register
class ChialvoRingStar(Study):
    key = "chialvo-ring-star"
    title = "Higher-order ring-star network of Chialvo neurons: route to chaos, 0-1 test, synchrony"
    arxiv = "2405.06000"
    family = "F"
    Config = Config
    threads = 1  # per-step ops on tiny batches: a second intra-op thread only spins
    claims = (
        Claim(
            "route-to-chaos",
            "fixed point -> period-2 -> quasiperiodic -> chaos appear in order along k",
            lambda s: s["route_stages"],
            ">=",
            4,
        ),
        Claim(
            "zero-one-vs-lyapunov",
            "0-1 test (K > 0.5) agrees with lambda_max > 0 on >= 95% of orbits",
            lambda s: s["k_lyap_agreement"],
            ">=",
            0.95,
        ),
        Claim(
            "k-regular",
            "mean K on periodic orbits (period >= 2) is near 0",
            lambda s: s["mean_k_periodic"],
            "<=",
            0.1,
        ),
        Claim("k-chaotic", "mean K on chaotic orbits is near 1", lambda s: s["mean_k_chaotic"], ">=", 0.9),
        Claim(
            "bifurcations-match-eigenvalues",
            "every stability-changing multiplier crossing (PD and NS found) "
            "has an orbit transition of the same type",
            lambda s: s["bifurcation_match"],
            ">=",
            1.0,
        ),
        Claim(
            "coexisting-chaotic-attractors",
            "some k has >= 2 distinct chaotic attractors",
            lambda s: s["max_chaotic_attractors"],
            ">=",
            2,
        ),
        Claim(
            "sampen-rises-with-chaos",
            "sample entropy is higher on chaotic than on periodic orbits",
            lambda s: s["sampen_chaotic_minus_periodic"],
            ">",
            0.0,
        ),
        Claim(
            "synchrony-rises-with-coupling",
            "Gamma rises with sigma1 + 2 sigma2 (Spearman >= 0.5)",
            lambda s: s["sync_spearman_gamma"],
            ">=",
            0.5,
        ),
    )

    def validate(self, cfg: Config) -> None:
        if cfg.n_k < 2 or cfg.n_ics < 1:
            raise ValueError(f"need n_k >= 2 and n_ics >= 1, got n_k={cfg.n_k}, n_ics={cfg.n_ics}")
        if not 100 <= cfg.n_record < cfg.n_iter or cfg.sampen_len > cfg.n_record:
            raise ValueError("need 100 <= n_record < n_iter and sampen_len <= n_record")
        if cfg.sync_record >= cfg.sync_iter or cfg.n_sync < 2:
            raise ValueError("need sync_record < sync_iter and n_sync >= 2")

    # ------------------------------------------------------------------ the k sweep
    def _sweep(self, cfg: Config, run: Any, sigma1: float, sigma2: float) -> dict[str, Any]:
        k = torch.linspace(cfg.k_max, cfg.k_min, cfg.n_k, dtype=torch.float64)
        net = ring_star_network(sigma1=sigma1, sigma2=sigma2, a=cfg.a, b=cfg.b, c=cfg.c, k=k)
        rep = net.repeat(cfg.n_ics)  # row p * n_ics + m: parameter p, initial condition m
        z0 = rep.initial_state(generator=run.generator)
        res = rep.run(z0, cfg.n_iter, cfg.n_iter - cfg.n_record, observe=range(5))  # x1..x4, y1
        lam, ldiv = A.lyapunov_max(rep, z0, cfg.n_iter, cfg.n_iter // 2, generator=run.generator)
        diverged = res.diverged | ldiv
        cls = A.classify_orbits(res.records, lam, diverged, lyap_tol=cfg.lyap_tol)
        return {"k": k, "net": net, "rep": rep, "res": res, "lam": lam, "diverged": diverged, "cls": cls}

    def run(self, cfg: Config, run: Any) -> dict:
        t0 = time.perf_counter()
        sw = self._sweep(cfg, run, cfg.sigma1, cfg.sigma2)
        k, net, res, lam, diverged, cls = sw["k"], sw["net"], sw["res"], sw["lam"], sw["diverged"], sw["cls"]
        m = cfg.n_ics
        x0 = res.records[:, :, 0].t()  # (P*M, T): the centre's x
        first = torch.arange(cfg.n_k) * m  # the first initial condition of each k
        cls1 = A.OrbitClass(cls.code[first], cls.period[first])
        route = A.route_stages(cls1, STAGES)
        run.log(0, stage="sweep")
        run.timing("elapsed_s", {"sweep": time.perf_counter() - t0})

        # 0-1 test and sample entropy of the centre's x
        kk = S.zero_one_k(x0, diverged, n_c=cfg.n_c, generator=run.generator)  # constant series: K = 0
        agreement = S.regime_agreement(kk, lam, diverged, cls, lyap_tol=cfg.lyap_tol)
        se = sample_entropy(x0[first, -cfg.sampen_len :])
        se_ch, se_per = S.regime_means(se, cls1)
        run.log(1, stage="chaos measures")
        run.timing("elapsed_s", {"chaos measures": time.perf_counter() - t0})

        # fixed-point and period-2 branches, their multipliers and unit-circle crossings
        x_fp = torch.zeros(cfg.n_k, dtype=torch.float64)
        y_fp = torch.full_like(x_fp, cfg.c / (1 - cfg.a))
        guess = torch.cat([x_fp[:, None].expand(-1, 4), y_fp[:, None].expand(-1, 4)], 1).clone()
        fp = A.fixed_points(net, guess)
        fp_ok = fp.converged & (fp.points[:, :4].std(1) < 1e-8)  # the synchronous branch
        last = res.state.reshape(cfg.n_k, m, -1)[:, 0]  # final state of the first orbit per k
        p2 = A.fixed_points(net, torch.nan_to_num(last), period=2)
        genuine = p2.converged & ((net.step(p2.points) - p2.points).abs().amax(1) > 1e-6)
        bif = S.branch_bifurcations(k, [(fp.eigenvalues, fp_ok), (p2.eigenvalues, genuine)], cls1, cfg.window)
        run.log(2, stage="bifurcations")
        run.timing("elapsed_s", {"bifurcations": time.perf_counter() - t0})

        # coexisting attractors among the random initial conditions of each k
        n_attr, n_chaotic_attr = S.attractors_per_point(res.records, diverged, cfg.n_k, among=cls.code == 4)
        best = int(torch.tensor(n_chaotic_attr).argmax())

        # baselines: uncoupled network on the same sweep; pairwise-only equivalent on K4
        base = self._sweep(cfg, run, 0.0, 0.0)
        base_cls1 = A.OrbitClass(base["cls"].code[first], base["cls"].period[first])
        z = net.initial_state(generator=run.generator)
        pair_net = ring_star_network(
            sigma1=cfg.sigma1 + 2 * cfg.sigma2, sigma2=0.0, a=cfg.a, b=cfg.b, c=cfg.c, k=k
        )
        equiv = float((net.step(z) - pair_net.step(z)).abs().max())
        run.log(3, stage="baselines")
        run.timing("elapsed_s", {"baselines": time.perf_counter() - t0})

        sync = self._synchrony(cfg, run)
        run.log(4, stage="synchrony")
        run.timing("elapsed_s", {"synchrony": time.perf_counter() - t0})
        self._figures(cfg, run, sw, kk, se, first, sync)

        return {
            "k": k.tolist(),
            "orbit_class": cls1.names(),
            "class_counts": S.class_counts(cls1),
            "lyapunov": S.finite_or_none(lam[first].tolist()),
            "zero_one_k": S.finite_or_none(kk[first].tolist()),
            "sample_entropy": S.finite_or_none(se.tolist()),
            "route_stages": route,
            **agreement,
            "n_diverged": int(diverged.sum()),
            "sampen_chaotic": se_ch,
            "sampen_periodic": se_per,
            "sampen_chaotic_minus_periodic": se_ch - se_per,
            **bif.summary(),
            "max_attractors": max(n_attr),
            "max_chaotic_attractors": max(n_chaotic_attr),
            "k_most_chaotic_attractors": float(k[best]),
            "uncoupled_class_counts": S.class_counts(base_cls1),
            "uncoupled_route_stages": A.route_stages(base_cls1, STAGES),
            "pairwise_equivalence_max_diff": equiv,
            "sync": {kx: v for kx, v in sync.items() if kx != "tensors"},
            "sync_spearman_gamma": sync["spearman_gamma"],
            "sync_spearman_r": sync["spearman_r"],
        }

    # ------------------------------------------------------------------ synchrony grid
    def _synchrony(self, cfg: Config, run: Any) -> dict[str, Any]:
        s1 = torch.linspace(0.0, cfg.sync_sigma1_max, cfg.n_sync, dtype=torch.float64)
        s2 = torch.linspace(0.0, cfg.sync_sigma2_max, cfg.n_sync, dtype=torch.float64)
        g1, g2 = torch.meshgrid(s1, s2, indexing="ij")
        net = ring_star_network(
            sigma1=g1.reshape(-1), sigma2=g2.reshape(-1), a=cfg.a, b=cfg.b, c=cfg.c, k=cfg.sync_k
        )
        z0 = net.initial_state(generator=run.generator)
        res = net.run(z0, cfg.sync_iter, cfg.sync_iter - cfg.sync_record, observe=range(4))
        x = res.records.permute(1, 2, 0)  # (grid, 4 nodes, T)
        gamma = cross_correlation(x)
        ev = spike_events(x, cfg.spike_threshold)
        _, r = kuramoto_order(phases_from_events(ev))
        gamma[res.diverged] = float("nan")
        r[res.diverged] = float("nan")
        eff = (g1 + 2 * g2).reshape(-1)
        return {
            "sigma1": s1.tolist(),
            "sigma2": s2.tolist(),
            "gamma": [S.finite_or_none(row) for row in gamma.reshape(cfg.n_sync, -1).tolist()],
            "kuramoto_r": [S.finite_or_none(row) for row in r.reshape(cfg.n_sync, -1).tolist()],
            "gamma_uncoupled": float(gamma[0]),
            "r_uncoupled": float(r[0]),
            "spearman_gamma": rank_correlation(eff, gamma),
            "spearman_r": rank_correlation(eff, r),
            "n_diverged": int(res.diverged.sum()),
            "tensors": (gamma.reshape(cfg.n_sync, -1), r.reshape(cfg.n_sync, -1), s1, s2),
        }

    # ------------------------------------------------------------------ figures
    def _figures(
        self,
        cfg: Config,
        run: Any,
        sw: dict[str, Any],
        kk: torch.Tensor,
        se: torch.Tensor,
        first: torch.Tensor,
        sync: dict[str, Any],
    ) -> None:
        k, res, lam, cls = sw["k"], sw["res"], sw["lam"], sw["cls"]
        fig = run.figure(figsize=(8, 6))
        ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        S.plot_bifurcation_lyapunov(ax1, ax2, k, res.records[:, :, 0], lam, sw["diverged"])
        ax1.set_ylabel("x (centre)")
        ax1.set_title(f"ring-star, sigma1={cfg.sigma1}, sigma2={cfg.sigma2}")
        ax2.set_xlabel("k")
        run.save_figure("bifurcation_lyapunov", fig)

        fig = run.figure(figsize=(10, 3))
        axes = fig.subplots(1, 4)
        cls1 = A.OrbitClass(cls.code[first], cls.period[first])
        orbit = res.records[:, first]  # the first orbit of each k
        # a few points into each regime, away from its boundary
        S.plot_phase_portraits(
            axes, STAGES, cls1, k, orbit[..., 0], orbit[..., 4], "k", into=4, labels=("x1", "y1")
        )
        run.save_figure("phase_portraits", fig)

        fig = run.figure(figsize=(8, 5))
        ax1, ax2 = fig.subplots(2, 1, sharex=True)
        S.plot_zero_one_sampen(ax1, ax2, k, kk[first], se)
        ax2.set_ylabel("SampEn (m=2, r=0.2 sd)")
        ax2.set_xlabel("k")
        run.save_figure("k_and_sampen_vs_k", fig)

        gamma, r, s1, s2 = sync["tensors"]
        fig = run.figure(figsize=(9, 4))
        axes = fig.subplots(1, 2)
        ext = [float(s2[0]), float(s2[-1]), float(s1[0]), float(s1[-1])]
        for ax, val, name in zip(axes, (gamma, r), ("cross-correlation Gamma", "Kuramoto R"), strict=True):
            im = ax.imshow(
                val.numpy(),
                origin="lower",
                aspect="auto",
                extent=ext,
                vmin=0 if name != "cross-correlation Gamma" else -1,
                vmax=1,
            )
            ax.set_xlabel("sigma2 (higher-order)")
            ax.set_ylabel("sigma1 (pairwise)")
            ax.set_title(name)
            fig.colorbar(im, ax=ax)
        run.save_figure("synchrony_vs_coupling", fig)
