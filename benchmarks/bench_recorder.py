"""Recorder overhead: training-step time with and without a Recorder on all hidden sites.

Models: a 3-layer MLP (784-256-256-10, batch 256) and a small CNN (two 3x3 conv layers with
ReLU and max-pooling on 1x28x28, batch 128). A step is forward + cross-entropy + backward + SGD.
"Hidden sites" are every module before the output layer that carries neurons: the Linear/Conv
outputs and the ReLU outputs (pooling and flatten excluded). The two variants alternate in
blocks within one process and the medians of the block times are compared, so drifts in machine
load hit both alike; the ratio reported is the median over pairs of neighbouring blocks (with its
interquartile range in the JSON). Both wall-clock and process CPU time are reported; on a machine
shared with other jobs the CPU-time ratio is the steadier one.

With ``--fused`` it also times ``Recorder(fused=True)`` (per-batch reductions compiled into one
kernel by torch.compile; compile time is spent in the warm-up, outside the timing).

    python benchmarks/bench_recorder.py [--quick] [--threads N] [--fused] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from neuroplast.core import Recorder, seed_everything


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),  # 16x26x26 -> 16x13x13
        nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),  # 32x11x11 -> 32x5x5
        nn.Flatten(), nn.Linear(800, 10),
    )


CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], int, list[str], list[str]]] = {
    # name: (model, input shape, batch, all hidden sites, hidden activation sites)
    "mlp": (mlp, (784,), 256, ["0", "1", "2", "3"], ["1", "3"]),
    "cnn": (cnn, (1, 28, 28), 128, ["0", "1", "3", "4"], ["1", "4"]),
}


def _block(step: Callable[[], None], n: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def bench(
    name: str, sites_kind: str, blocks: int, steps_per_block: int, fused: bool = False
) -> dict[str, float | str | int | bool]:
    make, shape, batch, all_sites, act_sites = CASES[name]
    gen = seed_everything(0)
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, *shape, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    sites = all_sites if sites_kind == "all" else act_sites
    # default stats: count, mean, mean_abs, max_abs, frac_active, var
    rec = Recorder(model, sites, fused=fused)
    for _ in range(5):  # warm up both paths
        step()
        with rec:
            step()
    base_w, base_c, rec_w, rec_c = [], [], [], []
    for i in range(blocks):
        order = (False, True) if i % 2 == 0 else (True, False)  # alternate which goes first
        for recording in order:
            if recording:
                with rec:
                    w, c = _block(step, steps_per_block)
                rec_w.append(w)
                rec_c.append(c)
            else:
                w, c = _block(step, steps_per_block)
                base_w.append(w)
                base_c.append(c)
    assert rec.stats[sites[0]]["count"] > 0
    # Paired ratios: each recorded block against the base block next to it, so slow drifts in
    # machine load cancel; the median and the quartiles of those ratios are reported.
    pair_w = sorted(r / b for r, b in zip(rec_w, base_w, strict=True))
    pair_c = sorted(r / b for r, b in zip(rec_c, base_c, strict=True))
    q = statistics.quantiles
    return {
        "model": name, "sites": sites_kind, "n_sites": len(sites), "batch": batch, "fused": fused,
        "base_wall_ms": 1e3 * statistics.median(base_w), "rec_wall_ms": 1e3 * statistics.median(rec_w),
        "ratio_wall": statistics.median(pair_w), "ratio_wall_iqr": [q(pair_w)[0], q(pair_w)[2]],
        "base_cpu_ms": 1e3 * statistics.median(base_c), "rec_cpu_ms": 1e3 * statistics.median(rec_c),
        "ratio_cpu": statistics.median(pair_c), "ratio_cpu_iqr": [q(pair_c)[0], q(pair_c)[2]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", default=None, help="write the results as JSON to this path")
    parser.add_argument("--fused", action="store_true", help="also time Recorder(fused=True) (torch.compile)")
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated subset of: mlp,cnn")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    blocks, steps = (4, 3) if args.quick else (40, 4)
    variants = (False, True) if args.fused else (False,)
    kinds = ("hidden activations", "all")
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(CASES)
    if unknown:
        parser.error(f"--models: unknown {sorted(unknown)}; choose from {list(CASES)}")
    rows = [bench(m, s, blocks, steps, f) for f in variants for m in models for s in kinds]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {blocks} blocks x {steps} steps")
    header = (f"{'model':5} {'sites':28} {'base ms':>8} {'rec ms':>8} {'ratio':>6} | "
              f"{'cpu base':>8} {'cpu rec':>8} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        sites = f"{r['sites']} ({r['n_sites']})" + (" fused" if r["fused"] else "")
        print(
            f"{r['model']:5} {sites:28} {r['base_wall_ms']:8.2f} {r['rec_wall_ms']:8.2f} "
            f"{r['ratio_wall']:6.3f} | "
            f"{r['base_cpu_ms']:8.2f} {r['rec_cpu_ms']:8.2f} {r['ratio_cpu']:6.3f}"
        )
    if args.out:
        meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
                "processor": platform.processor(), "blocks": blocks, "steps_per_block": steps}
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
