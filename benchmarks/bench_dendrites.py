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

from collections.abc import Callable

import _paired as bp
import torch
from torch import nn

from neuroplast.core import seed_everything
from neuroplast.neurons.perforated import PerforatedBackprop

LAYERS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "linear": (lambda: nn.Linear(256, 256), (256, 256)),
    "conv2d": (lambda: nn.Conv2d(16, 32, 3, padding=1), (32, 16, 16, 16)),
}
COUNTS = (1, 2, 4, 8)


def bench(layer: str, k: int, phase: str, blocks: int, steps: int) -> dict[str, float | str | int]:
    make, shape = LAYERS[layer]
    gen = seed_everything(0)
    plain = nn.Sequential(make())
    dend = nn.Sequential(make())
    dend.load_state_dict(plain.state_dict())
    perf = PerforatedBackprop(dend, "0", num_dendrites=k, generator=torch.Generator().manual_seed(1)).attach()
    perf.add_dendrites()
    if phase == "neuron":
        perf.freeze_dendrites()
    x = torch.randn(*shape, generator=gen).requires_grad_(True)

    def step_of(model: nn.Module) -> Callable[[], None]:
        params = list(model.parameters()) + (perf.parameters() if model is dend else [])

        def step() -> None:
            for p in params:
                p.grad = None
            x.grad = None
            model(x).sum().backward()

        return step

    arms = {"base": bp.Arm(step_of(plain)), "dend": bp.Arm(step_of(dend))}
    bp.warm_up(arms, rounds=5)  # warm up both
    times = bp.interleave(arms, blocks, steps, scheme="reverse")
    perf.detach()
    return {"layer": layer, "phase": phase, "k": k, **bp.Paired.of(times["base"], times["dend"]).row("dend")}


def main() -> None:
    p = bp.parser(__doc__)
    p.add_argument("--layers", default="linear,conv2d", help="comma-separated subset of: linear,conv2d")
    args = bp.parse(p)
    layers = bp.subset(p, "--layers", args.layers, LAYERS)
    blocks, steps = (4, 3) if args.quick else (20, 5)
    rows = [bench(layer, k, phase, blocks, steps) for layer in layers for phase in ("neuron", "dendrite")
            for k in COUNTS]
    header = (f"{'layer':7} {'phase':9} {'K':>2} {'base ms':>8} {'dend ms':>8} {'ratio':>6} | "
              f"{'cpu base':>8} {'cpu dend':>8} {'ratio':>6}")
    bp.print_table(bp.banner(blocks, steps), header, [
        f"{r['layer']:7} {r['phase']:9} {r['k']:>2} {r['base_wall_ms']:8.3f} {r['dend_wall_ms']:8.3f} "
        f"{r['ratio_wall']:6.2f} | {r['base_cpu_ms']:8.3f} {r['dend_cpu_ms']:8.3f} {r['ratio_cpu']:6.2f}"
        for r in rows
    ])
    bp.write_json(args.out, bp.meta(blocks, steps, steady_allocator=args.steady_allocator), rows)


if __name__ == "__main__":
    main()
