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

Allocator: with glibc's default malloc the CNN's multi-megabyte activations are handed back to the
system and faulted in again every step (~5,000 minor page faults per plain step, a quarter of its
CPU time), and whether the Recorder's scratch buffer happens to keep the heap from being trimmed
moved the CNN ratio between 0.93 and 1.35 from run to run. So the benchmark first sets glibc's mmap
and trim thresholds (``mallopt``) to keep freed memory in the process: no variant page-faults, and
the ratio measures the Recorder's work. ``--system-malloc`` leaves the allocator as it is.

    python benchmarks/bench_recorder.py [--quick] [--threads N] [--fused] [--system-malloc] [--out FILE]
"""

from __future__ import annotations

from collections.abc import Callable

import _paired as bp
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
    arms = {"base": bp.Arm(step), "rec": bp.Arm(step, lambda: rec)}
    bp.warm_up(arms, rounds=5)  # warm up both paths
    # Paired ratios: each recorded block against the base block next to it (the order alternates
    # every block), so slow drifts in machine load cancel; median and quartiles are reported.
    times = bp.interleave(arms, blocks, steps_per_block, scheme="reverse")
    assert rec.stats[sites[0]]["count"] > 0
    return {
        "model": name, "sites": sites_kind, "n_sites": len(sites), "batch": batch, "fused": fused,
        **bp.Paired.of(times["base"], times["rec"]).row("rec"),
    }


def main() -> None:
    p = bp.parser(__doc__)
    p.add_argument("--fused", action="store_true", help="also time Recorder(fused=True) (torch.compile)")
    p.add_argument("--models", default="mlp,cnn", help="comma-separated subset of: mlp,cnn")
    args = bp.parse(p)
    steady = args.steady_allocator
    blocks, steps = (4, 3) if args.quick else (40, 4)
    variants = (False, True) if args.fused else (False,)
    kinds = ("hidden activations", "all")
    models = bp.subset(p, "--models", args.models, CASES)
    rows = [bench(m, s, blocks, steps, f) for f in variants for m in models for s in kinds]
    header = (f"{'model':5} {'sites':28} {'base ms':>8} {'rec ms':>8} {'ratio':>6} | "
              f"{'cpu base':>8} {'cpu rec':>8} {'ratio':>6}")
    lines = []
    for r in rows:
        sites = f"{r['sites']} ({r['n_sites']})" + (" fused" if r["fused"] else "")
        lines.append(
            f"{r['model']:5} {sites:28} {r['base_wall_ms']:8.2f} {r['rec_wall_ms']:8.2f} "
            f"{r['ratio_wall']:6.3f} | "
            f"{r['base_cpu_ms']:8.2f} {r['rec_cpu_ms']:8.2f} {r['ratio_cpu']:6.3f}"
        )
    bp.print_table(bp.banner(blocks, steps, extra=f", steady allocator {steady}"), header, lines)
    bp.write_json(args.out, bp.meta(blocks, steps, steady_allocator=steady), rows)


if __name__ == "__main__":
    main()
