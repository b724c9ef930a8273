"""active-dendrites: the false-match theory of dendritic segments, and context-gated dendrites.

Paper: Ahmad & Hawkins 2016, "How do neurons operate on sparse distributed representations? A
mathematical theory of sparsity, neurons and active dendrites" (arXiv:1601.00720). The network of
part (ii) follows Iyer et al. 2022, "Avoiding catastrophe: active dendrites enable multi-task learning
in dynamic environments" (arXiv:2201.00042).

(i) Theory. A segment with s synapses on a population of n cells, a of them active, falsely matches a
random pattern when the overlap reaches theta: P = sum_{b>=theta} C(s,b) C(n-s,a-b) / C(n,a). For each
curve (n, a, s) one vectorised Monte Carlo run (synapses placed one by one without replacement)
estimates P for every theta at once; its size is planned from the formula so that the rarest point with
P >= p_min (1e-4, from the issue) expects ``hits_target`` hits. Curves: theta sweeps at n=1024, s=24 for
a = 32, 64 (sparse) and 512 (the dense-code baseline, a = n/2); the paper's scaling curves P(n) at
s=24, theta=12 for a = 64, 128, 256 (Monte Carlo where P >= p_min). The oracle point n=10000, a=300,
s=24, theta=12 (8.38e-13) is reported.

(ii) Continual learning (``tasks`` > 0). Permuted 8x8 digits, ``tasks`` tasks learned one after the
other. Dendritic MLP: two DendriticLayers (num_segments = tasks, context = one-hot task id, 50% fixed
weight sparsity) each followed by k-winners, then a linear read-out. Plain MLP: two ReLU layers whose
width gives the same number of trainable (unmasked) parameters. Both trained with Adam on the same
batches; reported: final accuracy on every task and their average. Settings chosen for the dendritic
net (stated, not hidden): k-WTA with 20% on and no boosting (with boost 1.0 the units that win under
boosting differ from those that win in eval, and a single task reached only ~67% test accuracy), and
segment weights drawn in [-2, 2] (``segment_init``): with a one-hot context the segment activation is a
single weight, and the default 1/sqrt(context_dim) scale gates every unit at sigmoid(~0) = 0.5 for every
task; Numenta's prototype contexts (dim 784) give large activations instead.

Claims (every seed): (1) Monte Carlo relative error <= 0.10 wherever P >= 1e-4; (2) the oracle point
within 0.5% of 8.38e-13 (3 significant digits); (3) at n=1024, s=24, theta=12 the dense code's false-match
probability exceeds the sparse code's (a=32); (4) the dendritic MLP's final average accuracy exceeds the
plain MLP's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from neuroplast.data import digits, permute
from neuroplast.neurons.dendritic import (
    DendriticLayer,
    KWinners,
    false_match_probability,
    monte_carlo_false_match,
)
from neuroplast.studies import Claim, Study, register

ORACLE = (10000, 300, 24, 12, 8.38e-13)
SWEEP_CURVES = ((1024, 32, 24), (1024, 64, 24), (1024, 512, 24))  # (n, a, s), theta = 1..s
SCALING_A = (64, 128, 256)
SCALING_N = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
SCALING_S, SCALING_THETA = 24, 12


@dataclass(frozen=True)
class Config:
    p_min: float = 1e-4  # Monte Carlo where P >= p_min (the claim's range, from the issue)
    hits_target: int = 4000  # expected hits at the rarest point of a curve (rel. SE = 1/sqrt(hits))
    min_trials: int = 100_000
    max_trials: int = 50_000_000
    # part (ii); tasks = 0 skips it
    tasks: int = 10
    hidden: int = 128
    percent_on: float = 0.2
    weight_sparsity: float = 0.5
    epochs_per_task: int = 3
    batch_size: int = 32
    lr: float = 5e-3
    optimizer: str = "adam"  # "adam" or "sgd" (plain SGD: a unit that loses the k-WTA gets no update at all)
    boost_strength: float = 0.0  # k-WTA duty-cycle boosting in the dendritic MLP
    segment_init: float = 2.0  # > 0: segment weights re-drawn uniform in [-segment_init, segment_init]

    @classmethod
    def quick(cls) -> Config:
        return cls(hits_target=1000, epochs_per_task=2)


def _mc_points(summary: dict, p_min: float) -> list[dict]:
    return [pt for pt in summary["mc"] if pt["p"] >= p_min]


class _DendriticMLP(nn.Module):
    def __init__(self, d_in: int, hidden: int, d_out: int, tasks: int, cfg: Config, gen: torch.Generator):
        super().__init__()
        self.l1 = DendriticLayer(d_in, hidden, tasks, tasks, cfg.weight_sparsity, generator=gen)
        self.k1 = KWinners(hidden, percent_on=cfg.percent_on, boost_strength=cfg.boost_strength)
        self.l2 = DendriticLayer(hidden, hidden, tasks, tasks, cfg.weight_sparsity, generator=gen)
        self.k2 = KWinners(hidden, percent_on=cfg.percent_on, boost_strength=cfg.boost_strength)
        self.out = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h = self.k1(self.l1(x, context))
        return self.out(self.k2(self.l2(h, context)))

    def effective_parameters(self) -> int:
        n = sum(p.numel() for p in self.parameters())
        for layer in (self.l1, self.l2):
            if layer.weight_mask is not None:
                n -= int((layer.weight_mask == 0).sum())
        return n


class _PlainMLP(nn.Module):
    def __init__(self, d_in: int, width: int, d_out: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, d_out)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _plain_width(d_in: int, d_out: int, params: int) -> int:
    """Width w of the plain MLP with w^2 + (d_in + d_out + 2) w + d_out ~= params."""
    b = d_in + d_out + 2
    return max(1, round((-b + math.sqrt(b * b + 4 * (params - d_out))) / 2))


@register
class ActiveDendrites(Study):
    key = "active-dendrites"
    title = "False matches of dendritic segments on sparse codes; context-gated dendrites against forgetting"
    arxiv = "1601.00720"
    family = "B"
    Config = Config
    threads = 1
    claims = (
        Claim(
            "mc-matches-formula",
            "max relative error |MC - formula| / formula over all grid points with P >= 1e-4 <= 0.10",
            lambda s: max(pt["rel_err"] for pt in _mc_points(s, 1e-4)),
            "<=",
            0.10,
        ),
        Claim(
            "oracle-point",
            "|P(n=10000, a=300, s=24, theta=12) / 8.38e-13 - 1| <= 0.005",
            lambda s: abs(s["oracle"]["p"] / ORACLE[4] - 1.0),
            "<=",
            0.005,
        ),
        Claim(
            "sparse-beats-dense",
            "log10 P(dense a=512) - log10 P(sparse a=32) at n=1024, s=24, theta=12 > 0",
            lambda s: s["dense_vs_sparse_log10"],
            ">",
            0.0,
        ),
        Claim(
            "dendrites-beat-plain",
            "final average accuracy over all permuted tasks: dendritic MLP minus plain MLP > 0",
            lambda s: s["continual"]["dendritic"]["final_avg"] - s["continual"]["plain"]["final_avg"],
            ">",
            0.0,
        ),
    )

    def validate(self, cfg: Config) -> None:
        if not 0.0 < cfg.p_min < 1.0:
            raise ValueError(f"p_min: expected a probability in (0, 1), got {cfg.p_min}")
        for name in ("hits_target", "min_trials", "max_trials", "hidden", "epochs_per_task", "batch_size"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(cfg, name)}")
        if cfg.max_trials < cfg.min_trials:
            raise ValueError(f"max_trials: expected >= min_trials={cfg.min_trials}, got {cfg.max_trials}")
        if cfg.tasks < 0 or cfg.tasks == 1:
            raise ValueError(f"tasks: expected 0 (skip part ii) or an int >= 2, got {cfg.tasks}")
        if not 0.0 < cfg.percent_on <= 1.0:
            raise ValueError(f"percent_on: expected a fraction in (0, 1], got {cfg.percent_on}")
        if not 0.0 <= cfg.weight_sparsity < 1.0:
            raise ValueError(f"weight_sparsity: expected a fraction in [0, 1), got {cfg.weight_sparsity}")
        if cfg.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer: expected 'adam' or 'sgd', got {cfg.optimizer!r}")
        if not cfg.segment_init >= 0:
            raise ValueError(f"segment_init: expected >= 0, got {cfg.segment_init}")
        if not cfg.boost_strength >= 0:
            raise ValueError(f"boost_strength: expected >= 0, got {cfg.boost_strength}")
        if not cfg.lr > 0:
            raise ValueError(f"lr: expected > 0, got {cfg.lr}")

    # ------------------------------------------------------------------------------------------------
    def _curves(self) -> list[tuple[int, int, int, list[int]]]:
        curves = [(n, a, s, list(range(1, s + 1))) for n, a, s in SWEEP_CURVES]
        for a in SCALING_A:
            for n in SCALING_N:
                if a <= n and (n, a, SCALING_S) not in SWEEP_CURVES:
                    curves.append((n, a, SCALING_S, [SCALING_THETA]))
        return curves

    def run(self, cfg: Config, run: Any) -> dict:
        self.validate(cfg)
        gen = run.generator
        state: dict[str, Any] = {"curves_done": 0, "mc": [], "tasks_done": 0}
        restored = run.restore()
        if restored is not None:
            state = restored[1]
            gen.set_state(state["gen"])

        # (i) formula vs Monte Carlo, one simulation per curve (n, a, s) covering all its thetas
        curves = self._curves()
        for i in range(int(state["curves_done"]), len(curves)):
            n, a, s, thetas = curves[i]
            exact = {t: false_match_probability(n, a, s, t) for t in thetas}
            rare = [p for p in exact.values() if p >= cfg.p_min]
            if rare:
                trials = min(cfg.max_trials, max(cfg.min_trials, math.ceil(cfg.hits_target / min(rare))))
                todo = [t for t in thetas if exact[t] >= cfg.p_min]
                for t, est in zip(todo, monte_carlo_false_match(n, a, s, todo, trials, gen), strict=True):
                    p = exact[t]
                    state["mc"].append(
                        {
                            "n": n,
                            "a": a,
                            "s": s,
                            "theta": t,
                            "p": p,
                            "mc": est.p,
                            "stderr": est.stderr,
                            "trials": trials,
                            "rel_err": abs(est.p - p) / p,
                            "z": (est.p - p) / est.stderr if est.stderr > 0 else 0.0,
                        }
                    )
                run.log(
                    i + 1,
                    n=n,
                    a=a,
                    s=s,
                    trials=trials,
                    points=len(todo),
                    max_rel_err=max(pt["rel_err"] for pt in state["mc"][-len(todo) :]),
                )
            state["curves_done"] = i + 1
            if run.should_checkpoint(i + 1):
                run.checkpoint(i + 1, {**state, "gen": gen.get_state()})

        sweeps = {
            f"{n}_{a}_{s}": [false_match_probability(n, a, s, t) for t in range(1, s + 1)]
            for n, a, s in SWEEP_CURVES
        }
        scaling = {
            str(a): [
                false_match_probability(n, a, SCALING_S, SCALING_THETA) if a <= n else None for n in SCALING_N
            ]
            for a in SCALING_A
        }
        on, oa, os_, ot, _ = ORACLE
        summary: dict[str, Any] = {
            "mc": state["mc"],
            "max_rel_err": max(pt["rel_err"] for pt in state["mc"]),
            "max_abs_z": max(abs(pt["z"]) for pt in state["mc"]),
            "mc_points": len(state["mc"]),
            "oracle": {
                "n": on,
                "a": oa,
                "s": os_,
                "theta": ot,
                "p": false_match_probability(on, oa, os_, ot),
            },
            "dense_vs_sparse_log10": (
                math.log10(sweeps["1024_512_24"][11]) - math.log10(sweeps["1024_32_24"][11])
            ),
            "sweeps": sweeps,
            "scaling": {"n": list(SCALING_N), "s": SCALING_S, "theta": SCALING_THETA, "p": scaling},
        }

        # (ii) permuted digits, tasks learned one after another
        if cfg.tasks:
            summary["continual"] = self._continual(cfg, run, state, len(curves))
        self._figures(run, summary)
        return summary

    # ------------------------------------------------------------------------------------------------
    def _continual(self, cfg: Config, run: Any, state: dict, step0: int) -> dict:
        ds = digits(seed=run.seed)
        x_tr, y_tr = ds.x_train.flatten(1), ds.y_train  # (N, 64)
        x_te, y_te = ds.x_test.flatten(1), ds.y_test
        d_in, d_out, T = x_tr.shape[1], int(y_tr.max()) + 1, cfg.tasks
        perms = [permute(run.seed * 1000 + t) for t in range(T)]
        init_gen = torch.Generator().manual_seed(run.seed * 7919 + 1)
        torch.manual_seed(run.seed * 7919 + 2)  # nn.Linear default initialisers
        dend = _DendriticMLP(d_in, cfg.hidden, d_out, T, cfg, init_gen)
        if cfg.segment_init > 0:
            for layer in (dend.l1, dend.l2):
                with torch.no_grad():
                    layer.segments.copy_(
                        (torch.rand(layer.segments.shape, generator=init_gen) * 2 - 1) * cfg.segment_init
                    )
        width = _plain_width(d_in, d_out, dend.effective_parameters())
        plain = _PlainMLP(d_in, width, d_out)
        models = {"dendritic": dend, "plain": plain}
        opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
        opts = {k: opt_cls(m.parameters(), lr=cfg.lr) for k, m in models.items()}
        order_gen = torch.Generator().manual_seed(run.seed * 7919 + 3)
        res: dict[str, Any] = state.get("continual_res") or {k: {"after_task": []} for k in models}
        if int(state.get("tasks_done", 0)) > 0:
            for k in models:
                models[k].load_state_dict(state["continual_models"][k])
                opts[k].load_state_dict(state["continual_opts"][k])
            order_gen.set_state(state["order_gen"])

        def ctx(t: int, b: int) -> torch.Tensor:
            return F.one_hot(torch.full((b,), t), T).float()  # (b, T)

        def accuracy(model: nn.Module, t: int) -> float:
            model.eval()
            with torch.no_grad():
                pred = model(perms[t](x_te), ctx(t, len(x_te))).argmax(1)
            model.train()
            return float((pred == y_te).double().mean())

        for t in range(int(state.get("tasks_done", 0)), T):
            xt = perms[t](x_tr)
            for _ in range(cfg.epochs_per_task):
                order = torch.randperm(len(xt), generator=order_gen)
                for j in range(0, len(order), cfg.batch_size):
                    idx = order[j : j + cfg.batch_size]
                    for k, model in models.items():
                        loss = F.cross_entropy(model(xt[idx], ctx(t, len(idx))), y_tr[idx])
                        opts[k].zero_grad(set_to_none=True)
                        loss.backward()
                        opts[k].step()
                for m in (dend.k1, dend.k2):
                    m.update_boost_strength()
            for k, model in models.items():
                res[k]["after_task"].append([accuracy(model, u) for u in range(t + 1)])
            run.log(
                step0 + t + 1, task=t, **{f"{k}_avg": sum(res[k]["after_task"][-1]) / (t + 1) for k in models}
            )
            state.update(
                tasks_done=t + 1,
                continual_res=res,
                order_gen=order_gen.get_state(),
                continual_models={k: m.state_dict() for k, m in models.items()},
                continual_opts={k: o.state_dict() for k, o in opts.items()},
            )
            if run.should_checkpoint(step0 + t + 1):
                run.checkpoint(step0 + t + 1, {**state, "gen": run.generator.get_state()})
        out: dict[str, Any] = {
            "tasks": T,
            "plain_width": width,
            "params": {
                "dendritic": dend.effective_parameters(),
                "plain": sum(p.numel() for p in plain.parameters()),
            },
        }
        for k in models:
            final = res[k]["after_task"][-1]
            out[k] = {
                "after_task": res[k]["after_task"],
                "final": final,
                "final_avg": sum(final) / len(final),
            }
        return out

    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def _figures(run: Any, summary: dict) -> None:
        fig = run.figure(figsize=(10, 3.8))
        ax1, ax2 = fig.subplots(1, 2)
        for (n, a, s), color in zip(SWEEP_CURVES, ("tab:blue", "tab:orange", "tab:gray"), strict=True):
            p = summary["sweeps"][f"{n}_{a}_{s}"]
            ax1.semilogy(
                range(1, s + 1),
                p,
                "-",
                color=color,
                label=f"n={n}, a={a}" + (" (dense)" if 2 * a == n else ""),
            )
            pts = [pt for pt in summary["mc"] if (pt["n"], pt["a"], pt["s"]) == (n, a, s)]
            ax1.errorbar(
                [pt["theta"] for pt in pts],
                [pt["mc"] for pt in pts],
                yerr=[2 * pt["stderr"] for pt in pts],
                fmt="o",
                ms=3,
                color=color,
            )
        ax1.axhline(1e-4, color="k", lw=0.5, ls=":")
        ax1.set(xlabel="NMDA threshold theta (s = 24)", ylabel="false-match probability", ylim=(1e-30, 2))
        ax1.set_title("formula (lines) vs Monte Carlo (dots, 2 SE)")
        ax1.legend(fontsize=8)
        ns = summary["scaling"]["n"]
        for a, color in zip(SCALING_A, ("tab:blue", "tab:orange", "tab:green"), strict=True):
            p = summary["scaling"]["p"][str(a)]
            ax2.loglog(
                [n for n, v in zip(ns, p, strict=True) if v],
                [v for v in p if v],
                "-",
                color=color,
                label=f"a={a}",
            )
            pts = [
                pt for pt in summary["mc"] if pt["a"] == a and pt["theta"] == SCALING_THETA and pt["s"] == 24
            ]
            ax2.plot([pt["n"] for pt in pts], [pt["mc"] for pt in pts], "o", ms=4, color=color)
        o = summary["oracle"]
        ax2.plot([o["n"]], [o["p"]], "k*", ms=8, label="n=10000, a=300")
        ax2.set(xlabel="population size n", ylabel="false-match probability (s=24, theta=12)")
        ax2.set_title("scaling with n (paper's curves)")
        ax2.legend(fontsize=8)
        run.save_figure("false_match", fig)
        if "continual" in summary:
            c = summary["continual"]
            fig = run.figure(figsize=(5, 3.6))
            ax = fig.subplots()
            for k, color in (("dendritic", "tab:blue"), ("plain", "tab:gray")):
                avgs = [sum(r) / len(r) for r in c[k]["after_task"]]
                ax.plot(range(1, len(avgs) + 1), avgs, "o-", color=color, label=k)
            ax.set(xlabel="tasks learned", ylabel="average accuracy over tasks so far", ylim=(0, 1.02))
            ax.set_title("permuted digits, learned one after another")
            ax.legend()
            run.save_figure("continual", fig)
