"""Recording and clamping overhead during transformer training (arXiv:2404.07129 setting).

Model: the 2-layer attention-only transformer of the induction-head-clamping study
(``neuroplast.models.AttentionOnlyTransformer``: vocab 64, d_model 64, 4 heads of 16 per layer, 32
positions, batch 32) trained with Adam on repeated random sequences. A step is forward +
cross-entropy + backward + Adam step. Variants, all timed in the same process:

- ``plain``: no hooks;
- ``recorder``: core ``Recorder`` (default stats) on the per-head output sites of both layers
  (``blocks.{0,1}.hook_result``, head axis 2: 4 neurons per site, 32*32*64 samples per step);
- ``recorder_mean``: the same Recorder keeping only count and mean;
- ``recorder_all``: the Recorder on all six head sites (patterns, z and results of both layers);
- ``clamp``: core ``Ablate`` of one head per layer at ``hook_result`` (a Clamp to 0, every step);
- ``clamp_z``: the same ablation at ``hook_z`` (per-head values before W_O: 4x smaller tensors;
  z = 0 gives the same zero head output);
- ``clamp_mean``: core ``Clamp`` of two heads of layer 0 to a per-head mean;
- ``recorder+clamp``: both of the first two at once;
- ``clamp_to_init``: ``ClampToSource`` of one layer-0 head to the initial model's output (one extra
  no-grad forward per step; reported, not held to the target);
- ``recorder_fused`` (with ``--fused``): ``Recorder(fused=True)`` (torch.compile; compiled in warm-up).

Every block starts from the same weights and Adam state (restored outside the timing). The variants
alternate in blocks (the order rotates every block) and each block of a variant is
compared with the plain block next to it, so drifts in machine load hit both alike; the ratio is the
median of these paired ratios (interquartile range in the JSON), in wall-clock and process CPU time.
Target: ratio <= 1.15 for recording and clamping.

    python benchmarks/bench_interventions.py [--quick] [--threads N] [--fused] [--out results.json]
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import _paired as bp
import torch
from torch.nn import functional as F

from neuroplast.core import Ablate, Clamp, Recorder, seed_everything
from neuroplast.models import AttentionOnlyTransformer, ClampToSource, repeated_sequences

VOCAB, SEQ, BATCH = 64, 32, 32
TARGET = 1.15


def bench(blocks: int, steps_per_block: int, fused: bool = False) -> list[dict]:
    gen = seed_everything(0)
    model = AttentionOnlyTransformer(VOCAB, 64, 2, 4, max_len=SEQ, generator=gen)
    init = copy.deepcopy(model).eval()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens, _ = repeated_sequences(BATCH, SEQ + 1, VOCAB, 8, 20, gen)
    x, y = tokens[:, :-1], tokens[:, 1:]

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1)).backward()
        opt.step()

    result_sites = model.head_sites("result")
    all_sites = [s for hook in ("pattern", "z", "result") for s in model.head_sites(hook)]
    means = {"mean": torch.linspace(-0.1, 0.1, 4)}
    variants: dict[str, Callable[[], list]] = {
        "recorder": lambda: [Recorder(model, result_sites)],
        "recorder_mean": lambda: [Recorder(model, result_sites, stats=("count", "mean"))],
        "recorder_all": lambda: [Recorder(model, all_sites)],
        "clamp": lambda: [Ablate(model, s, [1]) for s in result_sites],
        "clamp_z": lambda: [Ablate(model, s, [1]) for s in model.head_sites("z")],
        "clamp_mean": lambda: [Clamp(model, result_sites[0], [0, 2], value="mean", stats=means)],
        "recorder+clamp": lambda: [
            Recorder(model, result_sites), *[Ablate(model, s, [1]) for s in result_sites]
        ],
        "clamp_to_init": lambda: [ClampToSource(model, result_sites[0], [1], source=init)],
    }
    if fused:
        variants["recorder_fused"] = lambda: [Recorder(model, result_sites, fused=True)]
    objs = {k: make() for k, make in variants.items()}
    arms = {"plain": bp.Arm(step)} | {
        k: bp.Arm(step, lambda k=k: bp.entered(objs[k])) for k in variants
    }
    bp.warm_up(arms, rounds=3)  # warm up every path
    # every block starts from the same weights and optimizer state, so all variants do the same
    # numerical work apart from the intervention (no drift from training across blocks)
    snap_model = copy.deepcopy(model.state_dict())
    snap_opt = copy.deepcopy(opt.state_dict())

    def restore() -> None:
        model.load_state_dict(snap_model)
        opt.load_state_dict(snap_opt)

    # the order rotates every block (who goes first); restoring is not timed
    times = bp.interleave(arms, blocks, steps_per_block, scheme="rotate", before_block=restore)
    rows = [
        {"variant": k, **bp.Paired.of(times["plain"], times[k]).row(),
         "target": None if k == "clamp_to_init" else TARGET}
        for k in variants
    ]
    rec = objs["recorder"][0]
    assert float(rec.stats[result_sites[0].name]["count"]) > 0
    return rows


def main() -> None:
    p = bp.parser(__doc__)
    p.add_argument("--fused", action="store_true", help="also time Recorder(fused=True) (torch.compile)")
    args = bp.parse(p)
    blocks, steps = (4, 3) if args.quick else (30, 5)
    rows = bench(blocks, steps, args.fused)
    header = (f"{'variant':15} {'base ms':>8} {'ms':>8} {'ratio':>6} | "
              f"{'cpu base':>8} {'cpu':>8} {'ratio':>6} | target")
    lines = []
    for r in rows:
        ok = "-" if r["target"] is None else ("ok" if r["ratio_cpu"] <= r["target"] else "MISSED")
        lines.append(
            f"{r['variant']:15} {r['base_wall_ms']:8.2f} {r['wall_ms']:8.2f} {r['ratio_wall']:6.3f} | "
            f"{r['base_cpu_ms']:8.2f} {r['cpu_ms']:8.2f} {r['ratio_cpu']:6.3f} | {ok}"
        )
    bp.print_table(bp.banner(blocks, steps), header, lines)
    info = bp.meta(blocks, steps, steady_allocator=args.steady_allocator, batch=BATCH, seq=SEQ, vocab=VOCAB)
    bp.write_json(args.out, info, rows)


if __name__ == "__main__":
    main()
