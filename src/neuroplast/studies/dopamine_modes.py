"""dopamine-modes: specialise a frozen MLP to a rotated "mode" with per-neuron threshold-and-gain gates.

Paper: Ghasemlou 2026, "Dopamine: Brain Modes, Not Brains" (arXiv:2602.11726; the method is called
TauGate in v1). Adaptation as a change of mode: the base weights are frozen and every hidden neuron j
gets a learned threshold t_j and gain g_j (``neuroplast.neurons.gating.NeuronGate``)::

    training (smooth):   h'_j = g_j h_j sigmoid((h_j - t_j) / T)
    inference (hard):    h'_j = g_j h_j 1[h_j > t_j]

The gate form is our design (the paper's equations were not retrieved; its abstract states per-neuron
thresholds and gains, a smooth gate in training, hardened at inference). Gates sit on the two ReLU
outputs, so each gated layer has 2 x 256 = 512 trainable parameters.

Setting. MNIST-5k (4,000 train / 1,000 test, split by the seed). An MLP 784-256-256-10 is pretrained on
a 50/50 mixture: a random half of the training images (drawn from the seed) rotated by 45 degrees
(``neuroplast.data.rotate``), the other half upright. It is frozen and specialised to the rotated mode
(all training images rotated) by: the gate; IA3-style per-neuron scaling (``NeuronScale``, ones-
initialised, same sites); bias-only tuning (all biases, BitFit-style); LoRA r=4 on the three Linear
weights (``lora_rank=0`` skips it); full fine-tuning. Each arm starts from the same frozen base, runs
the same number of epochs over the same batches (Adam) and is scored on the rotated test images; the
upright test accuracy is reported beside it. The hardened gate is scored on the same test images, with
the fraction of (image, unit) pairs whose gated output is non-zero ("active") and the per-unit rates;
the frozen base's fraction of non-zero ReLU outputs on the same images is the reference.
The trained gate is saved with ``NeuronGate.save`` and reloaded into a fresh gate on a fresh copy of
the base, which must give the same accuracy.

Claims (fixed before the first run; per seed): (1) the gate beats the frozen base on rotated accuracy
(with 2 x 256 = 512 trainable parameters per gated layer, "a few hundred": a property of the
setting, reported as ``gate.params_per_layer``, not a claim, since it cannot fail); (2) hardening
costs at most 1 point of rotated accuracy against the smooth gate (PAPERS.md bound); (3) partial
sparsity: under the hard gate, a minority (< 50%) of (image, unit) pairs is active.

Measured (``--quick``, seeds 0-2; settings unchanged since the first run): rotated accuracy frozen
0.904/0.916/0.918, gate 0.930/0.929/0.936 (+1.3 to +2.6 points), hardened gate 0.931/0.930/0.933;
IA3 0.927/0.926/0.937 (512 params), bias-only 0.915/0.925/0.931 (522), LoRA r=4 0.930/0.945/0.944
(7,272), full 0.939/0.951/0.957 (269,322; upright accuracy falls to ~0.73, LoRA's to ~0.80, the gate's
stays ~0.91). Claims 1-3 hold on every seed; claim 4 does not: 59-62% of (image, unit) pairs stay
active under the hard gate (the frozen base's ReLUs: 65-68%), so the gate prunes some activity but
does not reach a minority. Tried after that result, on seed 0 only, default left unchanged:
``threshold_init=0.5`` gives 54% active (gate 0.929, hard 0.930); ``threshold_init=1.0`` gives 44%
active (gate 0.931, hard 0.929), i.e. starting with thresholds above most activations lets the gate
settle sparser at no accuracy cost. The full setting (20 + 20 epochs, about 80 s per seed on one
loaded core) gave on seed 0: frozen 0.916, gate 0.932, hard 0.932, 62% active.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from neuroplast.core import Recorder
from neuroplast.data import mnist, rotate
from neuroplast.neurons.gating import NeuronGate, NeuronScale
from neuroplast.studies import Claim, Study, register

ARMS = ("gate", "ia3", "bias", "lora", "full")
SITES = ["1", "3"]  # the two ReLU outputs of the MLP


@dataclass(frozen=True)
class Config:
    hidden: int = 256
    degrees: float = 45.0
    pretrain_epochs: int = 20
    adapt_epochs: int = 20
    batch_size: int = 64
    lr_pretrain: float = 1e-3
    lr_gate: float = 1e-2  # NeuronGate thresholds and gains
    lr_ia3: float = 1e-2
    lr_bias: float = 1e-2
    lr_lora: float = 2e-3
    lr_full: float = 1e-3
    temperature: float = 0.1  # T of the smooth gate, in units of the ReLU activations
    threshold_init: float = 0.0
    lora_rank: int = 4  # 0 skips the LoRA arm
    lora_alpha: float = 8.0
    figures: bool = True  # False skips drawing (the tests' determinism and resume runs)

    @classmethod
    def quick(cls) -> Config:
        return cls(pretrain_epochs=10, adapt_epochs=8)


def _mlp(hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)
    )


class _LoRA(nn.Module):
    """W + (alpha / r) B A with B = 0 at start (Hu et al. 2021, arXiv:2106.09685), as a parametrization."""

    def __init__(self, out_f: int, in_f: int, rank: int, alpha: float, gen: torch.Generator) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.randn(rank, in_f, generator=gen) / math.sqrt(in_f))
        self.B = nn.Parameter(torch.zeros(out_f, rank))
        self.scale = alpha / rank

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + self.scale * (self.B @ self.A)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


@register
class DopamineModes(Study):
    key = "dopamine-modes"
    title = "Per-neuron threshold-and-gain gates specialise a frozen MLP to rotated MNIST"
    arxiv = "2602.11726"
    family = "B"
    Config = Config
    threads = 1
    claims = (
        Claim(
            "gate-beats-frozen",
            "rotated test accuracy: smooth gate minus frozen base > 0",
            lambda s: s["arms"]["gate"]["rotated"] - s["arms"]["frozen"]["rotated"],
            ">",
            0.0,
        ),
        Claim(
            "hardening-costs-little",
            "rotated accuracy: smooth gate minus hardened gate <= 0.01 (1 point)",
            lambda s: s["arms"]["gate"]["rotated"] - s["gate"]["hard_rotated"],
            "<=",
            0.01,
        ),
        Claim(
            "minority-active",
            "hardened gate: fraction of (test image, hidden unit) pairs with non-zero output < 0.5",
            lambda s: s["gate"]["active_fraction"],
            "<",
            0.5,
        ),
    )

    def validate(self, cfg: Config) -> None:
        for name in ("hidden", "pretrain_epochs", "adapt_epochs", "batch_size"):
            v = getattr(cfg, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        for name in ("lr_pretrain", "lr_gate", "lr_ia3", "lr_bias", "lr_lora", "lr_full", "temperature",
                     "lora_alpha"):
            v = getattr(cfg, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: expected a finite number > 0, got {v!r}")
        if not math.isfinite(cfg.degrees):
            raise ValueError(f"degrees: expected a finite angle, got {cfg.degrees!r}")
        if not math.isfinite(cfg.threshold_init):
            raise ValueError(f"threshold_init: expected a finite number, got {cfg.threshold_init!r}")
        if isinstance(cfg.lora_rank, bool) or not isinstance(cfg.lora_rank, int) or cfg.lora_rank < 0:
            raise ValueError(f"lora_rank: expected an int >= 0 (0 skips LoRA), got {cfg.lora_rank!r}")

    # ------------------------------------------------------------------------------------------------
    def run(self, cfg: Config, run: Any) -> dict:
        self.validate(cfg)
        seed = run.seed
        ds = mnist(seed=seed)
        rot = rotate(cfg.degrees)
        x_tr, y_tr = ds.x_train, ds.y_train  # (4000, 1, 28, 28)
        x_te, y_te = ds.x_test.flatten(1), ds.y_test
        x_tr_rot, x_te_rot = rot(x_tr).flatten(1), rot(ds.x_test).flatten(1)
        half = torch.randperm(len(x_tr), generator=run.generator)[: len(x_tr) // 2]
        x_mix = x_tr.flatten(1).clone()
        x_mix[half] = x_tr_rot[half]  # 50/50 upright / rotated
        arms = [a for a in ARMS if a != "lora" or cfg.lora_rank > 0]

        state: dict[str, Any] = {"stage": 0, "arms": {}}
        restored = run.restore()
        if restored is not None:
            state = restored[1]
        epoch_step = [0]

        def train(model: nn.Module, params: list[nn.Parameter], lr: float, x: torch.Tensor, epochs: int,
                  stage: int, label: str) -> None:
            opt = torch.optim.Adam(params, lr=lr)
            order_gen = torch.Generator().manual_seed(seed * 7919 + stage)
            for e in range(epochs):
                order = torch.randperm(len(x), generator=order_gen)
                total = 0.0
                for j in range(0, len(order), cfg.batch_size):
                    idx = order[j : j + cfg.batch_size]
                    loss = F.cross_entropy(model(x[idx]), y_tr[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                epoch_step[0] += 1
                run.log(epoch_step[0], stage=label, epoch=e + 1, loss=total / len(x))

        # -- stage 1: the foundation model on the 50/50 mixture ------------------------------------------
        torch.manual_seed(seed * 7919 + 1)  # nn.Linear default initialisers
        base = _mlp(cfg.hidden)
        epoch_step[0] = 0
        if state["stage"] >= 1:
            base.load_state_dict(state["base"])
            epoch_step[0] = int(state["epoch_step"])
        else:
            train(base, list(base.parameters()), cfg.lr_pretrain, x_mix, cfg.pretrain_epochs, 1, "pretrain")
            state.update(stage=1, base=base.state_dict(), epoch_step=epoch_step[0])
            if run.should_checkpoint(1):
                run.checkpoint(epoch_step[0], state)
        base.requires_grad_(False).eval()
        with Recorder(base, SITES, stats=("count", "frac_active")) as rec:  # ReLU units > 0
            frozen_rot = _accuracy(base, x_te_rot, y_te)
        frozen = {"rotated": frozen_rot, "upright": _accuracy(base, x_te, y_te), "params": 0,
                  "active_fraction": float(torch.cat([rec.stats[s]["frac_active"] for s in SITES]).mean())}

        # -- stages 2..: one adaptation arm each, from the same frozen base ------------------------------
        for k, arm in enumerate(arms):
            stage = k + 2
            if state["stage"] >= stage:
                continue
            res = self._arm(arm, cfg, base, x_tr_rot, x_te, x_te_rot, y_te, seed, stage, train, run)
            state["arms"][arm] = res
            state.update(stage=stage, epoch_step=epoch_step[0])
            if run.should_checkpoint(stage):
                run.checkpoint(epoch_step[0], state)

        results = {"frozen": frozen, **{a: {k: v for k, v in state["arms"][a].items() if k != "gate"}
                                        for a in arms}}
        summary: dict[str, Any] = {
            "arms": results,
            "gate": state["arms"]["gate"]["gate"],
            "table": [{"arm": a, "rotated": r["rotated"], "upright": r["upright"], "params": r["params"]}
                      for a, r in results.items()],
            "base_params": sum(p.numel() for p in base.parameters()),
        }
        if cfg.figures:
            self._figures(run, summary)
        return summary

    # ------------------------------------------------------------------------------------------------
    def _arm(self, arm: str, cfg: Config, base: nn.Module, x_tr_rot: torch.Tensor, x_te: torch.Tensor,
             x_te_rot: torch.Tensor, y_te: torch.Tensor, seed: int, stage: int, train: Any, run: Any) -> dict:
        model = copy.deepcopy(base)  # frozen copy; the base itself is never touched
        extra: dict[str, Any] = {}
        adapter: NeuronGate | NeuronScale | None = None
        if arm == "gate":
            adapter = NeuronGate(model, SITES, temperature=cfg.temperature, threshold=cfg.threshold_init)
            params, lr = list(adapter.parameters()), cfg.lr_gate
        elif arm == "ia3":
            adapter = NeuronScale(model, SITES)
            params, lr = list(adapter.parameters()), cfg.lr_ia3
        elif arm == "bias":
            params = [m.bias for m in model if isinstance(m, nn.Linear)]
            lr = cfg.lr_bias
        elif arm == "lora":
            gen = torch.Generator().manual_seed(seed * 7919 + 100)
            for m in model:
                if isinstance(m, nn.Linear):
                    lora = _LoRA(m.out_features, m.in_features, cfg.lora_rank, cfg.lora_alpha, gen)
                    parametrize.register_parametrization(m, "weight", lora)
            params = [p for n, p in model.named_parameters() if n.endswith((".A", ".B"))]
            lr = cfg.lr_lora
        else:  # full fine-tuning
            params, lr = list(model.parameters()), cfg.lr_full
        for p in params:
            p.requires_grad_(True)
        if adapter is not None:
            adapter.attach()
        train(model, params, lr, x_tr_rot, cfg.adapt_epochs, stage, arm)
        rotated, upright = _accuracy(model, x_te_rot, y_te), _accuracy(model, x_te, y_te)
        if isinstance(adapter, NeuronGate):
            extra["gate"] = self._gate_report(adapter, model, base, cfg, x_te_rot, y_te, rotated, run)
        if adapter is not None:
            adapter.detach()
            # detaching gives the foundation back: the upright accuracy of the frozen base
            extra["upright_after_detach"] = _accuracy(model, x_te, y_te)
        return {"rotated": rotated, "upright": upright, "params": sum(p.numel() for p in params), **extra}

    @staticmethod
    def _gate_report(gate: NeuronGate, model: nn.Module, base: nn.Module, cfg: Config, x: torch.Tensor,
                     y: torch.Tensor, smooth_acc: float, run: Any) -> dict:
        with gate.hardened(), gate.track_firing():
            hard_acc = _accuracy(model, x, y)
        rates = gate.firing_rates()
        active = torch.cat([r["active"] for r in rates.values()])  # (units,) per-unit active rates
        # save only the gate parameters, reload into a fresh gate on a fresh copy of the base
        path = gate.save(run.dir / "gate_rotated.safetensors")
        fresh_model = copy.deepcopy(base)
        fresh = NeuronGate(fresh_model, SITES, temperature=1.0)
        fresh.load(path)
        with fresh:
            reload_acc = _accuracy(fresh_model, x, y)
        thresholds = torch.cat([p.threshold.detach() for p in gate.site_params])
        gains = torch.cat([p.gain.detach() for p in gate.site_params])
        return {
            "hard_rotated": hard_acc,
            "active_fraction": float(active.mean()),
            "open_fraction": float(torch.cat([r["open"] for r in rates.values()]).mean()),
            "units_never_active": int((active == 0).sum()),
            "units_active_majority": int((active > 0.5).sum()),
            "per_layer_active": {k: float(r["active"].mean()) for k, r in rates.items()},
            "active_rates": {k: [round(float(v), 6) for v in r["active"]] for k, r in rates.items()},
            "params_per_layer": gate.trainable_parameters(),
            "reloaded_rotated": reload_acc,
            "reload_matches": reload_acc == smooth_acc,
            "threshold_mean": float(thresholds.mean()),
            "threshold_std": float(thresholds.std()),
            "gain_mean": float(gains.mean()),
            "temperature": cfg.temperature,
        }

    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def _figures(run: Any, summary: dict) -> None:
        fig = run.figure(figsize=(10, 3.8))
        ax1, ax2 = fig.subplots(1, 2)
        table = summary["table"]
        for row in table:
            p = max(row["params"], 1)
            ax1.plot(p, row["rotated"], "o", ms=7, label=f"{row['arm']} ({row['params']:,} params)")
        ax1.axhline(summary["gate"]["hard_rotated"], color="k", lw=0.8, ls=":", label="gate, hardened")
        ax1.set_xscale("log")
        ax1.minorticks_off()
        ax1.set(xlabel="trainable parameters (frozen: plotted at 1)", ylabel="rotated test accuracy")
        ax1.set_title("specialising the frozen base to 45-degree MNIST")
        ax1.legend(fontsize=7)
        names = [r["arm"] for r in table]
        x = range(len(names))
        ax2.bar([i - 0.2 for i in x], [r["rotated"] for r in table], 0.4, label="rotated")
        ax2.bar([i + 0.2 for i in x], [r["upright"] for r in table], 0.4, label="upright")
        ax2.set_xticks(list(x), names)
        ax2.set(ylabel="test accuracy", ylim=(0.5, 1))
        ax2.legend(fontsize=8)
        run.save_figure("accuracy_vs_params", fig)
        fig = run.figure(figsize=(5, 3.6))
        ax = fig.subplots()
        for name, rates in summary["gate"]["active_rates"].items():
            ax.hist(rates, bins=20, range=(0, 1), alpha=0.6, label=f"site {name}")
        ax.set(xlabel="fraction of rotated test images on which the unit fires (hard gate)",
               ylabel="units")
        ax.set_title(f"which neurons fire: {summary['gate']['active_fraction']:.2f} active on average")
        ax.legend()
        run.save_figure("firing", fig)
