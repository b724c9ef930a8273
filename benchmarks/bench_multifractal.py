"""Sandbox multifractal analysis time against graph size, with a fitted exponent and a peer ratio.

Graphs: (a) 2-D periodic lattices of N = side^2 nodes (sparse, E = 2N); (b) neuron interaction networks
of a random 4-layer MLP with n neurons per layer (N = 4n nodes, E = 3n^2 dense edges of length 1/|w|).
Each analysis is ``sandbox_spectrum`` with 20 centres and 25 q values in [-3, 3] (the settings of the
neuromfa study). The time per size is the median of ``repeats`` runs (wall clock and process CPU
time); the exponent b of time ~ a * size^b is the least-squares slope in log-log over the sizes, against
N and against E. The peer is a plain networkx reference (``single_source_dijkstra_path_length`` per
centre, masses counted in Python, ``numpy.polyfit`` per q), timed in the same process on the smaller
graphs (its tau(q) must match); the ratio printed is peer CPU time / neuroplast CPU time (> 1:
neuroplast faster; CPU time is the steadier measure on a shared machine, wall ratios are in the JSON).

    python benchmarks/bench_multifractal.py [--quick] [--out results.json] [--plot timing.png]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
from scipy import sparse

from neuroplast.metrics.multifractal import interaction_network, sandbox_spectrum

Q = np.linspace(-3.0, 3.0, 25)
CENTRES = 20


def torus(side: int) -> Any:
    idx = np.arange(side * side).reshape(side, side)
    r = np.concatenate([idx.ravel(), idx.ravel()])
    c = np.concatenate([np.roll(idx, -1, axis=1).ravel(), np.roll(idx, -1, axis=0).ravel()])
    m = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(side * side,) * 2).tocsr()
    return m.maximum(m.T)


def nin(n: int) -> Any:
    rng = np.random.default_rng(n)
    ws = [rng.uniform(-1, 1, size=(n, n)) / np.sqrt(n) for _ in range(3)]
    return interaction_network(ws).lengths


def peer(m: Any, centres: np.ndarray, radii: np.ndarray, d: float) -> np.ndarray:
    """networkx reference of the same estimator: tau(q) per q."""
    g = nx.from_scipy_sparse_array(m, edge_attribute="weight")
    n = g.number_of_nodes()
    mass = []
    for c in centres:
        dist = nx.single_source_dijkstra_path_length(g, int(c), weight="weight")
        mass.append([sum(1 for v in dist.values() if v <= r) for r in radii])
    p = np.array(mass) / n
    x = np.log(radii / d)
    return np.array([np.polyfit(x, np.log(np.mean(p ** (qv - 1), axis=0)), 1)[0] for qv in Q])


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def bench(family: str, sizes: list[int], repeats: int, peer_max_edges: int) -> list[dict[str, Any]]:
    rows = []
    sandbox_spectrum(torus(8), Q, centres=CENTRES, seed=0)  # warm up (imports, first-call costs)
    for size in sizes:
        m = torus(size) if family == "lattice" else nin(size)
        n, e = m.shape[0], m.nnz // 2
        wall, cpu, spec = _time(lambda m=m: sandbox_spectrum(m, Q, centres=CENTRES, seed=0), repeats)
        row: dict[str, Any] = {"family": family, "size": size, "nodes": n, "edges": e, "wall_s": wall,
                               "cpu_s": cpu, "dimension": spec.dimension}
        if e <= peer_max_edges:
            centres = np.sort(np.random.default_rng(0).choice(n, CENTRES, replace=False))
            pw, pc, tau = _time(lambda m=m, c=centres, s=spec: peer(m, c, s.radii, s.diameter), 1)
            assert np.allclose(tau, spec.tau, atol=1e-8), "peer and neuroplast disagree"
            row.update(peer_wall_s=pw, peer_cpu_s=pc, ratio_wall=pw / wall, ratio_cpu=pc / max(cpu, 1e-9))
        rows.append(row)
    return rows


def exponent(rows: list[dict[str, Any]], x: str, y: str = "cpu_s") -> float:
    return float(np.polyfit(np.log([r[x] for r in rows]), np.log([r[y] for r in rows]), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, smaller graphs (a smoke run)")
    parser.add_argument("--out", default=None, help="write the results as JSON to this path")
    parser.add_argument("--plot", default=None, help="save a log-log plot of time against size (PNG)")
    args = parser.parse_args()
    if args.quick:
        plan = {"lattice": [16, 32, 64, 128], "nin": [16, 32, 64, 128]}
        repeats, peer_max = 2, 20_000
    else:
        plan = {"lattice": [16, 32, 64, 128, 256, 512], "nin": [16, 32, 64, 128, 256, 512, 1024]}
        repeats, peer_max = 5, 100_000
    rows = {fam: bench(fam, sizes, repeats, peer_max) for fam, sizes in plan.items()}
    fits = {fam: {"vs_nodes": exponent(r, "nodes"), "vs_edges": exponent(r, "edges")}
            for fam, r in rows.items()}
    print(f"sandbox_spectrum, {CENTRES} centres, {len(Q)} q values; median of {repeats} runs")
    header = (f"{'family':8} {'nodes':>8} {'edges':>9} {'wall s':>9} {'cpu s':>9} {'peer cpu':>9} "
              f"{'ratio':>7} {'D0':>6}")
    print(header)
    print("-" * len(header))
    for fam, rs in rows.items():
        for r in rs:
            pw = f"{r['peer_cpu_s']:9.3f}" if "peer_cpu_s" in r else f"{'-':>9}"
            ratio = f"{r['ratio_cpu']:7.1f}" if "ratio_cpu" in r else f"{'-':>7}"
            print(f"{fam:8} {r['nodes']:8d} {r['edges']:9d} {r['wall_s']:9.4f} {r['cpu_s']:9.4f} {pw} "
                  f"{ratio} {r['dimension']:6.3f}")
        print(f"{fam:8} fitted exponent of CPU time: {fits[fam]['vs_nodes']:.2f} vs nodes, "
              f"{fits[fam]['vs_edges']:.2f} vs edges")
    if args.plot:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5, 3.8))
        ax = fig.subplots()
        for (fam, rs), color in zip(rows.items(), ("tab:blue", "tab:orange"), strict=True):
            e = np.array([r["edges"] for r in rs], dtype=float)
            t = np.array([r["cpu_s"] for r in rs])
            ax.loglog(e, t, "o-", color=color, label=f"{fam} (slope {fits[fam]['vs_edges']:.2f})")
            pr = [r for r in rs if "peer_cpu_s" in r]
            ax.loglog([r["edges"] for r in pr], [r["peer_cpu_s"] for r in pr], "x--", color=color,
                      label=f"{fam}, networkx reference")
        ax.set(xlabel="edges", ylabel="CPU seconds per analysis", title="sandbox multifractal analysis")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
    if args.out:
        meta = {"numpy": np.__version__, "networkx": nx.__version__, "machine": platform.machine(),
                "processor": platform.processor(), "repeats": repeats, "centres": CENTRES, "q": len(Q)}
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "results": rows, "exponents": fits}, f, indent=1)


if __name__ == "__main__":
    main()
