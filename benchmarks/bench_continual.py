"""Continual-learning strategies: time per task as a ratio to fine-tuning, and state memory.

Setting: 784-100-100-10 MLP without biases (GPM protocol), plain SGD lr 0.05, batch 10, permuted
MNIST-5000 tasks (``--tasks`` tasks of ``--train`` images each). Every strategy trains the same
task sequence from the same initial weights in this one process; the time of a task covers its
training steps and the strategy's after-task work (Fisher, SVD, pruning, buffers), not the
evaluation. The strategies run in rounds, each round in a rotated order, and the ratio reported
is the median over rounds of (strategy time / fine-tune time in the same round), so drifts of the
machine load hit all alike (wall-clock time, as the studies report it). Memory is the
size of the tensors in each strategy's ``state_dict()`` after the last task.

A second part times replay alone: our vectorised reservoir buffer (preallocated tensors) against
a plain per-sample reservoir over a Python list, the way a naive replay plugin stores samples,
for adding a batch and sampling a replay batch (``replay_ratio``: list time / tensor time), at
batch 10 (the GPM protocol: per-op overhead dominates, the two are on a par) and batch 128.

    python benchmarks/bench_continual.py [--quick] [--rounds 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time

import torch

from neuroplast.continual.agem import AGEM
from neuroplast.continual.clnp import CLNP
from neuroplast.continual.ewc import EWC
from neuroplast.continual.gpm import GPM
from neuroplast.continual.hlop import HLOP, hlop_schedule
from neuroplast.continual.models import activation_names, linear_names, mlp
from neuroplast.continual.replay import Replay, ReservoirBuffer
from neuroplast.continual.scenarios import permuted
from neuroplast.continual.si import SI
from neuroplast.continual.strategy import Batch, FineTune, classification_loss
from neuroplast.continual.train import run_continual, sgd


def strategies(tasks: int) -> dict:
    """Constructors of the strategies timed (the quick-config hyperparameters of the studies)."""

    def g() -> torch.Generator:
        return torch.Generator().manual_seed(1)

    loss = classification_loss(None)
    sched = hlop_schedule([80, 25, 13], [70, 9, 9], tasks, [20, 3, 3])
    return {
        "finetune": lambda m: FineTune(),
        "ewc": lambda m: EWC(m, lam=10.0, loss_fn=loss, generator=g()),
        "si": lambda m: SI(m, c=0.1),
        "replay": lambda m: Replay(1000, generator=g()),
        "agem": lambda m: AGEM(m, 1000, ref_batch_size=64, loss_fn=loss, generator=g()),
        "gpm": lambda m: GPM(m, threshold=[0.95, 0.99, 0.99], generator=g()),
        "hlop": lambda m: HLOP(m, sched, lr=0.01, generator=g()),
        "clnp": lambda m: CLNP(m, linear_names(2), activation_names(2), generator=g()),
    }


def time_strategies(tasks: int, train: int, rounds: int) -> dict:
    single = permuted(tasks, source="mnist-5000", seed=0, train_per_task=train, test_per_task=200)
    multi = permuted(
        tasks, source="mnist-5000", seed=0, train_per_task=train, test_per_task=200, multi_head=True
    )
    makers = strategies(tasks)
    names = list(makers)
    wall: dict[str, list[float]] = {n: [] for n in names}
    memory = {}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            scn = multi if name == "clnp" else single  # CLNP needs one head per task
            model = mlp(
                784,
                [100, 100],
                scn.n_outputs,
                bias=name == "clnp",
                generator=torch.Generator().manual_seed(0),
            )
            strat = makers[name](model)
            res = run_continual(
                model,
                scn,
                strat,
                optimizer_fn=sgd(0.05),
                epochs=1,
                batch_size=10,
                generator=torch.Generator().manual_seed(0),
            )
            wall[name].append(sum(res.seconds) / tasks)
            memory[name] = strat.memory_bytes()
            strat.remove()
    out = {}
    for name in names:
        ratios = [w / f for w, f in zip(wall[name], wall["finetune"], strict=True)]
        out[name] = {
            "wall_s_per_task": statistics.median(wall[name]),
            "wall_ratio_vs_finetune": statistics.median(ratios),
            "memory_bytes": memory[name],
        }
    return out


class ListReservoir:
    """The naive peer: one Python list entry per stored sample, one random draw per offered sample."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        self.capacity, self.items, self.seen = capacity, [], 0
        self.rng = random.Random(seed)

    def add(self, batch: Batch) -> None:
        for x, y, t in zip(batch.x, batch.y, batch.t, strict=True):
            if len(self.items) < self.capacity:
                self.items.append((x.clone(), y.clone(), t.clone()))
            else:
                j = self.rng.randint(0, self.seen)
                if j < self.capacity:
                    self.items[j] = (x.clone(), y.clone(), t.clone())
            self.seen += 1

    def sample(self, k: int) -> Batch:
        picked = self.rng.sample(self.items, k)
        return Batch(
            torch.stack([p[0] for p in picked]),
            torch.stack([p[1] for p in picked]),
            torch.stack([p[2] for p in picked]),
        )


def time_replay(steps: int, capacity: int = 1000, batch: int = 10) -> dict:
    x = torch.rand(steps * batch, 1, 28, 28)
    y = torch.randint(0, 10, (steps * batch,))
    t = torch.zeros(steps * batch, dtype=torch.int64)
    res = {}
    for name, buf, sample in (
        (
            "tensor",
            ReservoirBuffer(capacity, generator=torch.Generator().manual_seed(0)),
            lambda b: b.sample(batch, torch.Generator().manual_seed(1)),
        ),
        ("list", ListReservoir(capacity), lambda b: b.sample(batch)),
    ):
        w0 = time.perf_counter()
        for i in range(steps):
            sl = slice(i * batch, (i + 1) * batch)
            buf.add(Batch(x[sl], y[sl], t[sl]))
            if i * batch >= capacity:
                sample(buf)
        res[name] = (time.perf_counter() - w0) / steps
    return {
        "batch": batch,
        "tensor_s_per_step": res["tensor"],
        "list_s_per_step": res["list"],
        "replay_ratio": res["list"] / res["tensor"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 tasks of 1,000 images, 1 round")
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.tasks, args.train, args.rounds = 3, 1000, 1
    results = {
        "setting": {
            "tasks": args.tasks,
            "train_per_task": args.train,
            "rounds": args.rounds,
            "threads": args.threads,
            "torch": torch.__version__,
            "machine": platform.machine(),
        },
        "strategies": time_strategies(args.tasks, args.train, args.rounds),
        "replay": [time_replay(300 if args.quick else 2000, batch=b) for b in (10, 128)],
    }
    print(f"{'strategy':10s} {'s/task':>8s} {'x finetune':>10s} {'state MB':>9s}")
    for name, r in results["strategies"].items():
        print(
            f"{name:10s} {r['wall_s_per_task']:8.3f} {r['wall_ratio_vs_finetune']:10.2f} "
            f"{r['memory_bytes'] / 2**20:9.2f}"
        )
    for rp in results["replay"]:
        print(
            f"replay buffer, batch {rp['batch']}: tensors {1e6 * rp['tensor_s_per_step']:.0f} us/step, "
            f"Python list {1e6 * rp['list_s_per_step']:.0f} us/step, ratio {rp['replay_ratio']:.1f}x"
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
