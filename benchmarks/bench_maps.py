"""Speed of map-network sweeps and chaos measures, side by side with their peers (one process, ratios).

1. Bifurcation sweep of the ring-star network (arXiv:2405.06000): P parameter values (the bias k) x
   n iterations of the 4-node Chialvo network, recording the centre's x after a transient.
   - neuroplast eager: ``MapNetwork.run`` (fused in-place ops on (P, 4) tensors);
   - neuroplast compiled: ``MapNetwork.run(backend="compile")`` (16 steps unrolled per compiled call);
   - numba: a jitted per-parameter loop (the usual hand-written kernel);
   - Python loop: a straightforward per-parameter loop over numpy 4-vectors, timed on a subset of the
     parameters and extrapolated linearly (said so in the table).
   All single-threaded (torch.set_num_threads(1), numba without prange), so the rate is per core.
2. The 0-1 test (ours, FFT-based, batched) against a direct numpy transcription, and sample entropy
   (ours) against antropy and nolds, on the same series.

Usage: python benchmarks/bench_maps.py [--params 2000] [--iters 20000] [--python-subset 8] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from neuroplast.dynamics.networks import ring_star_network
from neuroplast.metrics.chaos import sample_entropy, zero_one_test

A_, B_, C_ = 0.89, 0.18, 0.28
SIGMA1, SIGMA2 = 0.1, 0.05


def coupling_matrix() -> np.ndarray:
    return ring_star_network(SIGMA1, SIGMA2).coupling_matrix()[0].numpy()


def python_loop(ks: np.ndarray, x0: np.ndarray, y0: np.ndarray, n: int, transient: int) -> np.ndarray:
    cm = coupling_matrix()
    out = np.empty((len(ks), n - transient))
    for p, k in enumerate(ks):
        x, y = x0[p].copy(), y0[p].copy()
        for t in range(n):
            x, y = x * x * np.exp(y - x) + k + cm @ x, A_ * y - B_ * x + C_
            if t >= transient:
                out[p, t - transient] = x[0]
    return out


def make_numba():
    import numba

    @numba.njit(cache=True)
    def sweep(ks, cm, x0, y0, n, transient):  # pragma: no cover - compiled
        p_n, nn = x0.shape
        out = np.empty((p_n, n - transient))
        xn = np.empty(nn)
        for p in range(p_n):
            x = x0[p].copy()
            y = y0[p].copy()
            k = ks[p]
            for t in range(n):
                for i in range(nn):
                    s = 0.0
                    for j in range(nn):
                        s += cm[i, j] * x[j]
                    xn[i] = x[i] * x[i] * np.exp(y[i] - x[i]) + k + s
                for i in range(nn):
                    y[i] = A_ * y[i] - B_ * x[i] + C_
                    x[i] = xn[i]
                if t >= transient:
                    out[p, t - transient] = x[0]
        return out

    return sweep


def bench_sweep(p: int, n: int, subset: int) -> dict:
    torch.set_num_threads(1)
    transient = n - 200
    k = torch.linspace(-0.06, 0.02, p, dtype=torch.float64)
    net = ring_star_network(SIGMA1, SIGMA2, k=k)
    z0 = net.initial_state(generator=torch.Generator().manual_seed(0))
    x0, y0 = z0[:, :4].numpy().copy(), z0[:, 4:].numpy().copy()
    rows = {}

    t = time.perf_counter()
    eager = net.run(z0, n, transient, observe=[0])
    rows["neuroplast eager"] = time.perf_counter() - t

    t = time.perf_counter()
    net.run(z0, 32, 0, observe=[0], backend="compile")  # compile once (cached on disk afterwards)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    comp = net.run(z0, n, transient, observe=[0], backend="compile")
    rows["neuroplast compiled"] = time.perf_counter() - t

    try:
        sweep = make_numba()
        sweep(k.numpy()[:2], coupling_matrix(), x0[:2], y0[:2], 10, 5)  # jit warm-up
        t = time.perf_counter()
        nb = sweep(k.numpy(), coupling_matrix(), x0, y0, n, transient)
        rows["numba loop"] = time.perf_counter() - t
    except ImportError:
        nb = None

    sub = np.linspace(0, p - 1, subset).astype(int)  # spread over the sweep
    t = time.perf_counter()
    py = python_loop(k.numpy()[sub], x0[sub], y0[sub], n, transient)
    rows[f"python+numpy loop (extrapolated from {subset} params)"] = (time.perf_counter() - t) * p / subset

    # agreement: the same orbits (chaotic rows diverge from rounding after many steps, so compare
    # the non-chaotic part of the sweep: k > -0.03)
    reg = k.numpy() > -0.03
    e = eager.records[:, :, 0].t().numpy()
    agree = {
        "eager_vs_compiled": float(np.nanmax(np.abs(e[reg] - comp.records[:, :, 0].t().numpy()[reg]))),
        "eager_vs_python": float(np.nanmax(np.abs(e[sub][reg[sub]] - py[reg[sub]]))),
    }
    if nb is not None:
        agree["eager_vs_numba"] = float(np.nanmax(np.abs(e[reg] - nb[reg])))
    table = {name: {"seconds": s, "map_iters_per_s_per_core": p * n / s} for name, s in rows.items()}
    base = rows["neuroplast eager"]
    for name in table:
        table[name]["eager_speedup_vs_this"] = rows[name] / base
    return {
        "params": p,
        "iters": n,
        "table": table,
        "compile_seconds": compile_s,
        "max_abs_diff_regular": agree,
    }


def zero_one_numpy(phi: np.ndarray, cs: np.ndarray) -> float:
    n = len(phi)
    j = np.arange(1, n + 1)
    ncut = n // 10
    ns = np.arange(1, ncut + 1)
    kc = []
    for c in cs:
        p = np.cumsum(phi * np.cos(j * c))
        q = np.cumsum(phi * np.sin(j * c))
        m = np.array([np.mean((p[k:] - p[:-k]) ** 2 + (q[k:] - q[:-k]) ** 2) for k in ns])
        d = m - phi.mean() ** 2 * (1 - np.cos(ns * c)) / (1 - np.cos(c))
        kc.append(np.corrcoef(ns, d)[0, 1])
    return float(np.median(kc))


def bench_measures(n_series: int = 8, length: int = 2000) -> dict:
    torch.set_num_threads(1)
    k = torch.linspace(-0.05, -0.04, n_series, dtype=torch.float64)
    net = ring_star_network(SIGMA1, SIGMA2, k=k)
    res = net.run(
        net.initial_state(generator=torch.Generator().manual_seed(1)), 5000 + length, 5000, observe=[0]
    )
    x = res.records[:, :, 0].t().contiguous()
    out = {"series": n_series, "length": length}
    g = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    ours = zero_one_test(x, n_c=100, generator=g)
    out["zero_one_ours_s"] = time.perf_counter() - t
    cs = np.random.default_rng(0).uniform(math.pi / 5, 4 * math.pi / 5, 100)
    t = time.perf_counter()
    ref = [zero_one_numpy(v, cs) for v in x.numpy()]
    out["zero_one_numpy_direct_s"] = time.perf_counter() - t
    out["zero_one_values"] = {"ours": ours.tolist(), "numpy_direct": ref}
    t = time.perf_counter()
    se = sample_entropy(x)
    out["sampen_ours_s"] = time.perf_counter() - t
    try:
        import antropy

        t = time.perf_counter()
        sa = [antropy.sample_entropy(v, order=2) for v in x.numpy()]
        out["sampen_antropy_s"] = time.perf_counter() - t
        out["sampen_max_abs_diff_antropy"] = float(np.max(np.abs(np.array(sa) - se.numpy())))
    except ImportError:
        pass
    try:
        import nolds

        t = time.perf_counter()
        sn = [nolds.sampen(v, emb_dim=2, tolerance=0.2 * np.std(v)) for v in x.numpy()]
        out["sampen_nolds_s"] = time.perf_counter() - t
        out["sampen_max_abs_diff_nolds"] = float(np.max(np.abs(np.array(sn) - se.numpy())))
    except ImportError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=int, default=2000)
    ap.add_argument("--iters", type=int, default=20000)
    ap.add_argument("--python-subset", type=int, default=8)
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args()
    result = {"sweep": bench_sweep(args.params, args.iters, args.python_subset), "measures": bench_measures()}
    print(f"ring-star sweep: {args.params} params x {args.iters} iterations (single core)")
    for name, row in result["sweep"]["table"].items():
        print(
            f"  {name:50s} {row['seconds']:9.2f} s  {row['map_iters_per_s_per_core']:11.3e} it/s/core  "
            f"eager is {row['eager_speedup_vs_this']:6.2f}x faster"
        )
    print(
        f"  compile time (once): {result['sweep']['compile_seconds']:.1f} s; "
        f"agreement on regular orbits: {result['sweep']['max_abs_diff_regular']}"
    )
    m = result["measures"]
    print(
        f"0-1 test, {m['series']} series x {m['length']}: ours {m['zero_one_ours_s']:.3f} s, "
        f"direct numpy {m['zero_one_numpy_direct_s']:.3f} s"
    )
    print(
        f"sample entropy: ours {m['sampen_ours_s']:.3f} s, "
        f"antropy {m.get('sampen_antropy_s', float('nan')):.3f} s, "
        f"nolds {m.get('sampen_nolds_s', float('nan')):.3f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
