"""Study: a deep rate-coded XOR network of superconducting single-flux-quantum neurons with
stochastic synapses (Krylov, Edwards, Friedman & Friedman, arXiv:2311.10721).

Mechanism: ``neuroplast.neurons.sfq`` (architecture level): every pulse crossing a synapse passes
with probability p (set by the synapse's bias current), neurons integrate fluxons in a storage loop
and emit a pulse when it holds ``threshold`` = 2 fluxons (our choice), excitatory and inhibitory
routes give the sign, an always-on pulse source with its own synapses is the bias.

Protocol: inputs are clocked pulse trains (a "1" is a pulse every tick, a "0" none). The 2-4-1
network's probabilities are trained on the mean-field (expected-rate) model (``fit_mean_field``,
targets 0.8 for class 1 and 0 for class 0, the best of ``restarts`` random starts by mean-field
margin), then deployed stochastically. The output rate is counted over windows of N ticks; the
margin of one trial is min(rate of the class-1 inputs) - max(rate of the class-0 inputs). A
trial's four inputs are classified with one threshold fixed beforehand from an independent
calibration run (midpoint of the class-mean rates at the longest window). Baselines in the same
run: the single-layer stochastic net 2-1 trained the same way (cannot solve XOR) and the
deterministic mean-field 2-4-1 net (upper bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from neuroplast.neurons.sfq import SFQNetwork, fit_mean_field, rate_encode
from neuroplast.studies import Claim, Study, register

X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = torch.tensor([0.0, 1.0, 1.0, 0.0])


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = (4,)
    threshold: float = 2.0
    windows: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
    trials: int = 400
    calibration_trials: int = 100
    restarts: int = 8
    fit_steps: int = 1500
    lr: float = 0.05
    target_high: float = 0.8
    slope_from: int = 64  # fit the noise exponent on windows >= this

    @classmethod
    def quick(cls) -> Config:
        return cls(
            windows=(8, 16, 32, 64, 128, 256, 512, 1024, 2048), trials=100, calibration_trials=50, restarts=4
        )


def _mf_margin(net: SFQNetwork) -> float:
    with torch.no_grad():
        r = net.mean_field(X).squeeze(1)
    return float(r[Y == 1].min() - r[Y == 0].max())


def _train(sizes: list[int], cfg: Config, g: torch.Generator) -> tuple[SFQNetwork, float]:
    best: tuple[float, SFQNetwork] | None = None
    for _ in range(cfg.restarts):
        net = SFQNetwork(sizes, threshold=cfg.threshold, generator=g)
        fit_mean_field(net, X, (Y * cfg.target_high).unsqueeze(1), steps=cfg.fit_steps, lr=cfg.lr)
        m = _mf_margin(net)
        if best is None or m > best[0]:
            best = (m, net)
    assert best is not None
    return best[1], best[0]


def _deploy(net: SFQNetwork, trials: int, ticks: int, g: torch.Generator) -> torch.Tensor:
    """Output pulse trains [ticks, trials, 4] of ``trials`` independent runs on the four inputs."""
    x = X.repeat(trials, 1)  # (4 * trials, 2), trial-major
    pulses = rate_encode(x, ticks, mode="regular")
    return net(pulses, generator=g).squeeze(-1).view(ticks, trials, 4)


def _per_window(out: torch.Tensor, windows: tuple[int, ...], threshold: float) -> dict:
    res: dict = {"margin_mean": [], "margin_std": [], "margin_p05": [], "accuracy": [], "rate_mean": []}
    for n in windows:
        rates = out[:n].mean(0)  # (trials, 4)
        margin = rates[:, Y == 1].min(1).values - rates[:, Y == 0].max(1).values
        pred = (rates > threshold).float()
        res["margin_mean"].append(float(margin.mean()))
        res["margin_std"].append(float(margin.std()))
        res["margin_p05"].append(float(margin.quantile(0.05)))
        res["accuracy"].append(float((pred == Y).float().mean()))
        res["rate_mean"].append(rates.mean(0).tolist())
    return res


def _slope(windows: list[int], stds: list[float], start: int) -> float:
    pts = [(math.log(n), math.log(s)) for n, s in zip(windows, stds, strict=True) if n >= start and s > 0]
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((a - mx) * (b - my) for a, b in pts) / sum((a - mx) ** 2 for a, _ in pts)


@register
class SFQNeuromorphic(Study):
    key = "sfq-neuromorphic"
    title = "Deep neuromorphic networks with superconducting single flux quanta"
    arxiv = "2311.10721"
    family = "C"
    Config = Config
    claims = (
        Claim(
            "xor-solved",
            "the stochastic 2-4-1 network classifies all four XOR inputs correctly in every trial "
            "at the longest window",
            lambda s: s["deep"]["accuracy"][-1],
            ">=",
            1.0,
        ),
        Claim(
            "margin-positive",
            "the stochastic classification margin (output-rate gap) at the longest window is positive",
            lambda s: s["deep"]["margin_mean"][-1],
            ">",
            0.0,
        ),
        Claim(
            "margin-noise-inverse-sqrt-window",
            "the trial-to-trial spread of the margin falls as N^-1/2 (fitted exponent within 0.1 of -0.5)",
            lambda s: abs(s["deep"]["noise_exponent"] + 0.5),
            "<=",
            0.1,
        ),
        Claim(
            "worst-case-margin-grows",
            "the 5th-percentile margin is larger at the longest window than at the shortest",
            lambda s: s["deep"]["margin_p05"][-1] - s["deep"]["margin_p05"][0],
            ">",
            0.0,
        ),
        Claim(
            "single-layer-fails",
            "the single-layer stochastic net does not solve XOR (accuracy < 1 at the longest window)",
            lambda s: s["single"]["accuracy"][-1],
            "<",
            1.0,
        ),
        Claim(
            "mean-field-upper-bound",
            "the deterministic mean-field margin is at least the stochastic mean margin "
            "at the longest window",
            lambda s: s["deep"]["mean_field_margin"] - s["deep"]["margin_mean"][-1],
            ">=",
            0.0,
        ),
    )

    def validate(self, cfg: Config) -> None:
        if sorted(cfg.windows) != list(cfg.windows) or len(cfg.windows) < 2 or cfg.windows[0] < 1:
            raise ValueError(f"windows: expected increasing positive window lengths, got {cfg.windows}")
        if sum(w >= cfg.slope_from for w in cfg.windows) < 2:
            raise ValueError(
                f"slope_from: expected at least two windows >= {cfg.slope_from}, got {cfg.windows}"
            )
        if cfg.trials < 2 or cfg.calibration_trials < 1:
            raise ValueError(
                f"trials: expected >= 2 (and calibration_trials >= 1), got {cfg.trials}, "
                f"{cfg.calibration_trials}"
            )

    def run(self, cfg: Config, run) -> dict:
        g = run.generator
        summary: dict = {"windows": list(cfg.windows)}
        for name, sizes in (("deep", [2, *cfg.hidden, 1]), ("single", [2, 1])):
            net, mf_margin = _train(sizes, cfg, g)
            with torch.no_grad():
                mf_rates = net.mean_field(X).squeeze(1).tolist()
            calib = _deploy(net, cfg.calibration_trials, cfg.windows[-1], g).mean(0)  # (trials, 4) rates
            threshold = 0.5 * float(calib[:, Y == 1].mean() + calib[:, Y == 0].mean())
            res = _per_window(_deploy(net, cfg.trials, cfg.windows[-1], g), cfg.windows, threshold)
            res.update(
                mean_field_margin=mf_margin,
                mean_field_rates=mf_rates,
                decision_threshold=threshold,
                noise_exponent=_slope(list(cfg.windows), res["margin_std"], cfg.slope_from),
                probabilities=[
                    {k: v.detach().tolist() for k, v in layer.probabilities().items()} for layer in net.layers
                ],
            )
            summary[name] = res
            run.log(
                0 if name == "deep" else 1,
                net=name,
                mean_field_margin=mf_margin,
                margin=res["margin_mean"][-1],
                accuracy=res["accuracy"][-1],
            )

        fig = run.figure(figsize=(10, 3.8))
        fig.subplots_adjust(wspace=0.35)
        ax = fig.add_subplot(1, 2, 1)
        w = list(cfg.windows)
        for name, color in (("deep", "C0"), ("single", "C3")):
            r = summary[name]
            lo = [m - s for m, s in zip(r["margin_mean"], r["margin_std"], strict=True)]
            hi = [m + s for m, s in zip(r["margin_mean"], r["margin_std"], strict=True)]
            ax.fill_between(w, lo, hi, color=color, alpha=0.2)
            ax.plot(
                w,
                r["margin_mean"],
                "o-",
                color=color,
                label=f"{'2-4-1' if name == 'deep' else '2-1'} stochastic",
            )
            ax.plot(w, r["margin_p05"], ":", color=color)
            ax.axhline(r["mean_field_margin"], color=color, ls="--", lw=1, label=f"{name} mean-field")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("counting window N (ticks)")
        ax.set_ylabel("margin (rate gap)")
        ax.legend(fontsize=7)
        ax = fig.add_subplot(1, 2, 2)
        sd = summary["deep"]["margin_std"]
        ax.loglog(w, sd, "o-", label="margin std (2-4-1)")
        ref = [sd[-1] * math.sqrt(w[-1] / n) for n in w]
        ax.loglog(w, ref, "k--", lw=1, label="N^-1/2")
        ax.set_xlabel("counting window N (ticks)")
        ax.set_ylabel("trial-to-trial std of margin")
        ax.legend(fontsize=8)
        run.save_figure("margin_vs_window", fig)
        return summary
