"""NeuronGate overhead: forward + backward time of a Linear layer with a gate at its output vs the plain one.

Layer: Linear(784, 256) (the first layer of the dopamine-modes MLP) and Linear(256, 256), batch 256.
A step is forward, sum of the output, backward into the layer's input and the gate's parameters (the
weights are frozen, as in the study; ``--train-weights`` also back-propagates into them). Variants:

- ``plain``: the Linear layer alone;
- ``gate``: Linear + ``NeuronGate`` at its output (smooth mode; ``neuroplast.neurons.gating.gate``:
  the threshold enters as the bias of one scaled add, 4 elementwise kernels forward);
- ``gate_textbook``: the same gate as the textbook expression ``g * h * sigmoid((h - t) / T)`` in a
  forward hook (5 kernels forward), for comparison.

Measured on an idle 16-core x86-64 machine (torch 2.11, one thread, batch 256; wall-clock ratio):
frozen weights 1.24 (784x256) and 1.59 (256x256); trained weights 1.15 (784x256) and 1.32 (256x256);
the textbook expression is within a few percent of the library gate. On a CUDA H100 the layer is
launch-bound and the gate's extra kernels give about 2.4x. The gate's ~12 elementwise passes over the
(256, 256) output (the sigmoid alone ~50 us) weigh against one to three small matrix products, so the
1.15 target holds only for the larger layer with trained weights. A hand-written autograd Function
(saving only h and the sigmoid) and ``torch.compile`` were tried and were not faster. Between runs the
ratio can move by ~0.3 from glibc's adaptive mmap threshold (large activations re-faulted each step);
``MALLOC_MMAP_THRESHOLD_=1073741824`` steadies it.

The variants alternate in blocks within one process; each gated block is compared with the plain block
next to it and the median of those paired ratios is reported (with its interquartile range in the
JSON), wall-clock and process CPU time. Target: ratio <= 1.15.

    python benchmarks/bench_gating.py [--quick] [--threads N] [--train-weights] [--device cuda] [--out FILE]
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
from neuroplast.neurons.gating import NeuronGate, gate

SHAPES = {"784x256": (784, 256), "256x256": (256, 256)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _block(step: Callable[[], None], n: int, device: torch.device) -> tuple[float, float]:
    _sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    _sync(device)
    return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def bench(shape: str, batch: int, blocks: int, steps: int, train_weights: bool,
          device: torch.device) -> dict[str, object]:
    d_in, d_out = SHAPES[shape]
    gen = seed_everything(0)
    layer = nn.Linear(d_in, d_out).to(device)
    layer.requires_grad_(train_weights)
    x = torch.randn(batch, d_in, generator=gen).to(device).requires_grad_(True)
    g = NeuronGate(layer, "", temperature=0.1, threshold=0.0)
    with torch.no_grad():
        g.site_params[0].threshold.copy_(torch.randn(d_out, generator=gen) * 0.5)
        g.site_params[0].gain.copy_(torch.rand(d_out, generator=gen) + 0.5)
    params = g.site_params[0]

    def textbook_hook(module: nn.Module, args: object, out: torch.Tensor) -> torch.Tensor:
        return params.gain * out * torch.sigmoid((out - params.threshold) / 0.1)

    def step() -> None:
        x.grad = None
        params.threshold.grad = params.gain.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()

    variants = ("gate", "gate_textbook")
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in ("plain", *variants)}

    def run(variant: str) -> tuple[float, float]:
        if variant == "plain":
            return _block(step, steps, device)
        if variant == "gate":
            with g:
                return _block(step, steps, device)
        handle = layer.register_forward_hook(textbook_hook)
        try:
            return _block(step, steps, device)
        finally:
            handle.remove()

    for _ in range(3):  # warm-up
        for v in times:
            run(v)
    with g:  # the library gate and the textbook expression agree
        y_gate = layer(x)
    handle = layer.register_forward_hook(textbook_hook)
    y_ref = layer(x)
    handle.remove()
    torch.testing.assert_close(y_gate, y_ref)
    assert torch.allclose(y_gate, gate(layer(x), params.threshold, params.gain, 0.1))
    for i in range(blocks):
        order = ["plain", *variants] if i % 2 == 0 else [*variants[::-1], "plain"]
        for v in order:
            times[v].append(run(v))
    q = statistics.quantiles
    row: dict[str, object] = {"layer": shape, "batch": batch, "train_weights": train_weights,
                              "device": str(device),
                              "plain_wall_ms": 1e3 * statistics.median(w for w, _ in times["plain"]),
                              "plain_cpu_ms": 1e3 * statistics.median(c for _, c in times["plain"])}
    for v in variants:
        pw = sorted(a[0] / b[0] for a, b in zip(times[v], times["plain"], strict=True))
        pc = sorted(a[1] / b[1] for a, b in zip(times[v], times["plain"], strict=True))
        row[f"{v}_wall_ms"] = 1e3 * statistics.median(w for w, _ in times[v])
        row[f"{v}_ratio_wall"] = statistics.median(pw)
        row[f"{v}_ratio_wall_iqr"] = [q(pw)[0], q(pw)[2]]
        row[f"{v}_ratio_cpu"] = statistics.median(pc)
        row[f"{v}_ratio_cpu_iqr"] = [q(pc)[0], q(pc)[2]]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--train-weights", action="store_true", help="also back-propagate into the weights")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--out", default=None, help="write the results as JSON to this path")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    blocks, steps = (4, 5) if args.quick else (40, 10)
    device = torch.device(args.device)
    rows = [bench(s, args.batch, blocks, steps, args.train_weights, device) for s in SHAPES]
    print(f"torch {torch.__version__}, {device}, threads {torch.get_num_threads()}, {blocks} blocks x "
          f"{steps} steps, weights {'trained' if args.train_weights else 'frozen'}, target ratio <= 1.15")
    header = (f"{'layer':8} {'plain ms':>9} {'gate ms':>8} {'ratio':>6} {'cpu':>6} | "
              f"{'textbook ms':>11} {'ratio':>6} {'cpu':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['layer']:8} {r['plain_wall_ms']:9.3f} {r['gate_wall_ms']:8.3f} "
              f"{r['gate_ratio_wall']:6.3f} {r['gate_ratio_cpu']:6.3f} | {r['gate_textbook_wall_ms']:11.3f} "
              f"{r['gate_textbook_ratio_wall']:6.3f} {r['gate_textbook_ratio_cpu']:6.3f}")
    if args.out:
        meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
                "processor": platform.processor(), "blocks": blocks, "steps_per_block": steps}
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
