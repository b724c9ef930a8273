"""A toy study for the runner tests (not part of the package).

A tiny regression net trained with momentum SGD on data drawn from ``run.generator``; minibatches come
from ``run.generator`` and dropout from the global torch RNG, so a resumed run only matches an
uninterrupted one if the runner restores both. Loaded through ``NEUROPLAST_STUDIES=toy_study``
with this directory on PYTHONPATH.

``NEUROPLAST_TEST_KILL_AT_STEP=k`` makes the run die (``os._exit(137)``) right after logging
step k, before that step's checkpoint.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

import torch
from torch import nn

from neuroplast.studies import Claim, Study, register

KILL_ENV = "NEUROPLAST_TEST_KILL_AT_STEP"
N_SAMPLES = 64


@dataclass(frozen=True)
class ToyConfig:
    steps: int = 120
    lr: float = 0.02
    hidden: tuple[int, ...] = (8,)
    dropout: float = 0.1
    fail_claim: bool = False
    site: str = "net.*"  # must match a module name of the net (checked during setup)
    label: str = "toy"

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    @classmethod
    def quick(cls) -> ToyConfig:
        return cls(steps=60)


def _loss_ratio(summary: dict) -> float:
    return summary["final_loss"] / summary["initial_loss"]


@register
class ToyStudy(Study):
    key = "toy"
    title = "Toy regression <b>& 'quotes'</b>"  # markup on purpose: the report must escape it
    arxiv = "0000.00000"
    family = "test"
    Config = ToyConfig
    claims = (
        Claim("loss-drops", "training cuts the loss at least in half", _loss_ratio, "<", 0.5),
        Claim("flag-set", "holds unless fail_claim is set", lambda s: s["flag"], ">=", 0.5),
    )

    def validate(self, cfg: ToyConfig) -> None:
        if cfg.steps < 1:
            raise ValueError(f"steps must be >= 1, got {cfg.steps}")

    def run(self, cfg: ToyConfig, run) -> dict:
        g = run.generator
        x = torch.randn(N_SAMPLES, 4, generator=g)  # (S, 4)
        y = x @ torch.randn(4, 1, generator=g) + 0.1 * torch.randn(N_SAMPLES, 1, generator=g)  # (S, 1)
        layers: list[nn.Module] = []
        width = 4
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.Tanh(), nn.Dropout(cfg.dropout)]
            width = h
        net = nn.Sequential(*layers, nn.Linear(width, 1))  # init from the global RNG
        names = [f"net.{n}" for n, _ in net.named_modules() if n]
        if not fnmatch.filter(names, cfg.site):
            raise ValueError(f"site pattern {cfg.site!r} matches no module (modules: {', '.join(names)})")
        params = list(net.parameters())
        # Momentum SGD by hand (torch.optim would import torch._dynamo: seconds per process).
        # Its buffers are keyed by int, like an optimizer's state_dict.
        momentum = {i: torch.zeros_like(p) for i, p in enumerate(params)}

        losses: list[float] = []
        start = 1
        restored = run.restore()
        if restored is not None:
            step, state = restored
            net.load_state_dict(state["model"])
            momentum = dict(state["momentum"])
            losses = list(state["losses"])
            start = step + 1
        kill_at = int(os.environ.get(KILL_ENV, "-1"))
        for step in range(start, cfg.steps + 1):
            idx = torch.randint(0, N_SAMPLES, (16,), generator=g)
            net.train()
            loss = ((net(x[idx]) - y[idx]) ** 2).mean()
            net.zero_grad()
            loss.backward()
            with torch.no_grad():
                for i, p in enumerate(params):
                    momentum[i].mul_(0.9).add_(p.grad)
                    p.sub_(cfg.lr * momentum[i])
            losses.append(loss.item())
            run.log(step, loss=loss.item(), lr=cfg.lr)
            if step == kill_at:
                os._exit(137)
            if run.should_checkpoint(step):
                run.checkpoint(step, {"model": net.state_dict(), "momentum": momentum, "losses": losses})

        net.eval()
        with torch.no_grad():
            full = ((net(x) - y) ** 2).mean()
        fig = run.figure(figsize=(4, 3))
        ax = fig.add_subplot()
        ax.plot(losses)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        run.save_figure("loss", fig)
        return {
            "initial_loss": sum(losses[:5]) / 5,
            "final_loss": sum(losses[-10:]) / 10,
            "full_loss": full,  # a 0-d tensor: the runner converts it
            "flag": 0.0 if cfg.fail_claim else 1.0,
            "loss_every_10": losses[::10],
            "shape": {"hidden": list(cfg.hidden), "steps": cfg.steps},
        }


@dataclass(frozen=True)
class FailingConfig(ToyConfig):
    fail_claim: bool = True

    @classmethod
    def quick(cls) -> FailingConfig:
        return cls(steps=60)


@register
class ToyFailingStudy(ToyStudy):
    """The toy study whose presets set fail_claim: its "flag-set" claim fails (verify exits 1)."""

    key = "toy-failing"
    title = "Toy regression with a failing claim"
    Config = FailingConfig
