"""Dendrite overhead: forward + backward time of a Linear / Conv2d layer with perforated dendrites
against the plain layer, per dendrite count K = 1, 2, 4, 8.

Layers: Linear(256 -> 256) on a batch of 256, and Conv2d(16 -> 32, 3x3, padding 1) on a batch of 32
of 16x16 maps. A step is forward + sum of the output + backward (parameter gradients and, for the
layer input, the input gradient). Two dendrite phases are timed (``neuroplast.neurons.perforated``):

- ``neuron``: K frozen dendrites per neuron (d computed under no_grad, only v gets a gradient): the
  cost paid during every later neuron phase and at inference;
- ``dendrite``: K candidate dendrites per neuron trained by the cascade-correlation objective (their
  gradient comes from the custom backward of the correlation tap).

The plain layer and the dendrite variant alternate in blocks within one process; the ratio reported
is the median over pairs of neighbouring blocks (interquartile range in the JSON), in wall-clock and
process CPU time (on a machine shared with other jobs the CPU-time ratio is the steadier one).
Reference point: a layer with K dendrites per neuron holds (1 + K) times the plain layer's weights;
in the neuron phase the dendrites cost one forward product each plus elementwise work on (.., N, K)
tensors (tanh, the v-weighted sum and v's gradient); in the dendrite phase also the weight gradient.

    python benchmarks/bench_dendrites.py [--quick] [--threads N] [--out results.json]
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

from neuroplast.core import seed_everything
from neuroplast.neurons.perforated import PerforatedBackprop

LAYERS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "linear": (lambda: nn.Linear(256, 256), (256, 256)),
    "conv2d": (lambda: nn.Conv2d(16, 32, 3, padding=1), (32, 16, 16, 16)),
}
COUNTS = (1, 2, 4, 8)


def _block(step: Callable[[], None], n: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def bench(layer: str, k: int, phase: str, blocks: int, steps: int) -> dict[str, float | str | int]:
    make, shape = LAYERS[layer]
    gen = seed_everything(0)
    plain = nn.Sequential(make())
    dend = nn.Sequential(make())
    dend.load_state_dict(plain.state_dict())
    pb = PerforatedBackprop(dend, "0", num_dendrites=k, generator=torch.Generator().manual_seed(1)).attach()
    pb.add_dendrites()
    if phase == "neuron":
        pb.freeze_dendrites()
    x = torch.randn(*shape, generator=gen).requires_grad_(True)

    def step_of(model: nn.Module) -> Callable[[], None]:
        params = list(model.parameters()) + (pb.parameters() if model is dend else [])

        def step() -> None:
            for p in params:
                p.grad = None
            x.grad = None
            model(x).sum().backward()

        return step

    s_plain, s_dend = step_of(plain), step_of(dend)
    for _ in range(5):  # warm up both
        s_plain()
        s_dend()
    base_w, base_c, dend_w, dend_c = [], [], [], []
    for i in range(blocks):
        order = (s_plain, s_dend) if i % 2 == 0 else (s_dend, s_plain)
        for s in order:
            w, c = _block(s, steps)
            if s is s_plain:
                base_w.append(w)
                base_c.append(c)
            else:
                dend_w.append(w)
                dend_c.append(c)
    pb.detach()
    pair_w = sorted(d / b for d, b in zip(dend_w, base_w, strict=True))
    pair_c = sorted(d / b for d, b in zip(dend_c, base_c, strict=True))
    q = statistics.quantiles
    return {
        "layer": layer, "phase": phase, "k": k,
        "base_wall_ms": 1e3 * statistics.median(base_w), "dend_wall_ms": 1e3 * statistics.median(dend_w),
        "ratio_wall": statistics.median(pair_w), "ratio_wall_iqr": [q(pair_w)[0], q(pair_w)[2]],
        "base_cpu_ms": 1e3 * statistics.median(base_c), "dend_cpu_ms": 1e3 * statistics.median(dend_c),
        "ratio_cpu": statistics.median(pair_c), "ratio_cpu_iqr": [q(pair_c)[0], q(pair_c)[2]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", default=None, help="write the results as JSON to this path")
    parser.add_argument("--layers", default="linear,conv2d", help="comma-separated subset of: linear,conv2d")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    layers = [s for s in args.layers.split(",") if s]
    unknown = set(layers) - set(LAYERS)
    if unknown:
        parser.error(f"--layers: unknown {sorted(unknown)}; choose from {list(LAYERS)}")
    blocks, steps = (4, 3) if args.quick else (20, 5)
    rows = [bench(layer, k, phase, blocks, steps) for layer in layers for phase in ("neuron", "dendrite")
            for k in COUNTS]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {blocks} blocks x {steps} steps")
    header = (f"{'layer':7} {'phase':9} {'K':>2} {'base ms':>8} {'dend ms':>8} {'ratio':>6} | "
              f"{'cpu base':>8} {'cpu dend':>8} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['layer']:7} {r['phase']:9} {r['k']:>2} {r['base_wall_ms']:8.3f} {r['dend_wall_ms']:8.3f} "
            f"{r['ratio_wall']:6.2f} | {r['base_cpu_ms']:8.3f} {r['dend_cpu_ms']:8.3f} {r['ratio_cpu']:6.2f}"
        )
    if args.out:
        meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
                "processor": platform.processor(), "blocks": blocks, "steps_per_block": steps}
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
