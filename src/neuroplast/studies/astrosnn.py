"""astrosnn: astrocyte-modulated spiking units hold a cue across a delay longer than plain LIF.

Paper: Shen et al., "Astrocyte-Enabled Advancements in Spiking Neural Networks for Large Language
Modeling" (arXiv:2312.07625). Its AM-SU equations could not be retrieved; the unit is the declared
stand-in of :mod:`neuroplast.neurons.astro` (a slow astrocyte per group of neurons integrates their
spikes, ``a = lambda_a a + (1 - lambda_a) mean(s)``, and scales their input by ``1 + gamma a``).

The paper's AM-SU equations were searched for again (arXiv HTML v2 in the pages corpus, the
docs/code/issues corpora, BrainCog-X/Brain-Cog and the first author's repositories): only the
abstract is reachable and no code of the paper is public, so the stand-in stays.

Task (delayed recall with distractors): one of ``K`` symbols is shown (one-hot, ``cue_len`` steps),
then ``D`` delay steps, then a go signal on an extra channel for ``recall_len`` steps; the network
must name the cue from its spikes during the go window (linear readout of the mean spike vector,
cross-entropy). Each delay step shows, with probability ``distractor_rate``, a one-step distractor:
a random symbol on the cue channels. The rate is ``cue_len / max(delays)``: at the longest delay the
distractors carry on average as much input as the cue, at shorter delays proportionally less.
All sequences have length ``1 + max(D) + cue_len + recall_len``: the cue starts later for shorter
delays. One network per arm is trained on a mixture of the delays (``D`` drawn uniformly from
``delays``, surrogate gradients, BPTT through the whole sequence, Adam) and tested on a fixed set of
each delay.

Arms (same LIF neurons, same initial shared weights draw per seed, same batches):
``plain``: recurrent LIF SNN; ``astro``: the same with ``groups`` astrocytes (adds ``groups``
learnable ``gamma``); ``lstm`` (optional reference): an LSTM whose hidden size matches the
plain arm's parameter count as closely as possible. The spiking arms must match within 2% in
parameter count (validated; both counts are in the summary).

Claims (every seed, thresholds fixed before any run by principle: "astrocytes help", i.e. > 0):
astro minus plain test accuracy at the longest delay > 0, and averaged over the delays > 0.

History. First version (blank delays; quick: K=4, delays 5-40, H=48, 12 astrocytes, 250 steps;
2,788 vs 2,800 parameters): both arms reached 100% at D <= 20 on every seed; at D=40 astro 1.00 vs
plain 0.73 on seed 0 and both 1.00 on seeds 1-2 (ceiling: no separation). Full (K=8, delays 10-100,
1,500 steps): gaps +0.242 / 0 / +0.906 (longest) and +0.148 / 0 / +0.829 (mean), seed 1 with both
arms at chance. A pilot with delays 10-80 and 400 steps was no better (astro seed 0 in runaway
activity, input gain ``1 + gamma a`` feeding back through ``a``, at chance).

Changed (decided before any run of the new version, to make the task discriminating without
touching the claims or the parameter counts): distractors during the delay, at the rate rule above
(quick 0.1, full 0.04). Reason: on a blank delay a recurrent LIF net holds the cue in a
self-sustained activity pattern that nothing disturbs, so any delay the net can learn is held
perfectly (the ceiling above); distractors knock such a pattern more often the longer the delay,
giving the accuracy-versus-delay curve the claim is about, and they probe the mechanism the
stand-in adds (an activity-dependent input gain per group, which can shut active groups off from
new input). Quick steps 250 -> 400 because the task is harder.

Measured with distractors (quick, seeds 0 / 1 / 2; 2,788 vs 2,800 parameters; 121-144 s per seed
on a loaded 2-core machine): astro minus plain at D=40 +0.766 / -0.227 / +0.320, on the mean over
delays +0.736 / -0.166 / +0.287, so both claims hold on seeds 0 and 2 and fail on seed 1. Test
accuracy at D=5/10/20/40: plain .35/.24/.23/.23, .69/.55/.50/.52, .73/.78/.66/.68; astro
1.0/1.0/1.0/.99, .49/.45/.36/.29, 1.0/1.0/1.0/1.0. The task now separates the arms, but training
is unstable in both: on seed 0 plain never leaves chance, and on seed 1 astro learned the task
(train loss 0.03 at step 150) and then diverged (0.97 at step 200, about 1.3 from step 250 on;
test firing rate 0.33 at D=5 against 0.16-0.21 on the seeds that held). Full ``Config()`` with
distractors (K=8, delays 10-100, 1,500 steps; 5,256 / 5,272 / 5,168 parameters plain / astro /
LSTM; 463-1,151 s per seed): gaps +0.738 / -0.086 / -0.770 (D=100) and +0.851 / -0.100 / -0.836
(mean). Seed 0: astro .996 at D=100, plain and LSTM near chance; seed 1: all three arms at chance;
seed 2: plain 1.0 at every delay, astro at chance, LSTM .24-.28. In the full setting every spiking
run ends near 100% or near chance, so the verdict per seed is decided by which arm's training
succeeds. The failed full astro runs fire at one rate whatever the delay (.35 and .51:
input-independent, self-sustained activity, the runaway the input gain ``1 + gamma a`` with
gamma = 5 allows); the failed plain runs either never learned (full seed 1, quick seed 0) or
learned and then diverged (full seed 0: loss 0.98, then 2.0). The claim does not
reproduce robustly at this scale. Not retuned after these runs (no gradient clipping, learning
rate or gamma change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from neuroplast.neurons.astro import MODES, RecurrentAstroLIF
from neuroplast.neurons.surrogate import get as get_surrogate
from neuroplast.studies import Claim, Study, register

ARMS = ("plain", "astro", "lstm")


@dataclass(frozen=True)
class Config:
    delays: tuple[int, ...] = (10, 25, 50, 100)
    symbols: int = 8  # K
    cue_len: int = 4
    recall_len: int = 4
    # chance per delay step of a one-step distractor symbol (same K channels as the cue); rule:
    # cue_len / max(delays), so at the longest delay the distractors carry as much input as the cue
    distractor_rate: float = 0.04
    hidden: int = 64
    groups: int = 16  # astrocytes (each covers hidden / groups neurons)
    beta: float = 0.9  # LIF membrane decay (tau = 10 steps), both spiking arms
    threshold: float = 1.0
    surrogate: str = "atan"
    mode: str = "input"  # astrocyte modulation: "input" (x (1 + gamma a)) or "threshold"
    gamma: float = 5.0  # initial gamma (learnable, one per astrocyte)
    lambda_a: float = 0.98  # astrocyte decay (about 50 steps), fixed
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    test_per_delay: int = 256
    log_every: int = 50
    arms: tuple[str, ...] = ARMS

    @classmethod
    def quick(cls) -> Config:
        return cls(delays=(5, 10, 20, 40), symbols=4, hidden=48, groups=12, steps=400, test_per_delay=128,
                   distractor_rate=0.1, arms=("plain", "astro"))


def _acc_gap_longest(s: dict) -> float:
    d = str(max(int(k) for k in s["astro"]["acc_by_delay"]))
    return s["astro"]["acc_by_delay"][d] - s["plain"]["acc_by_delay"][d]


def _acc_gap_mean(s: dict) -> float:
    a, p = s["astro"]["acc_by_delay"], s["plain"]["acc_by_delay"]
    return sum(a[k] - p[k] for k in a) / len(a)


CLAIMS = (
    Claim("astro-beats-plain-longest-delay",
          "test accuracy at the longest delay: astrocyte-modulated RSNN minus plain RSNN > 0",
          _acc_gap_longest, ">", 0.0),
    Claim("astro-beats-plain-mean-over-delays",
          "test accuracy averaged over the delays: astrocyte-modulated RSNN minus plain RSNN > 0",
          _acc_gap_mean, ">", 0.0),
)


# ---------------------------------------------------------------------------------------- task
def delayed_recall_batch(cfg: Config, n: int, gen: torch.Generator,
                         delay: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x [T, n, K+1]`` (time first), labels ``y [n]``, delays ``d [n]``; ``delay`` fixes D.

    Each of the ``d`` delay steps independently shows, with probability ``cfg.distractor_rate``,
    one uniformly drawn symbol for one step on the cue channels (a distractor; it may equal the cue).
    """
    K, D = cfg.symbols, max(cfg.delays)
    T = 1 + D + cfg.cue_len + cfg.recall_len
    y = torch.randint(K, (n,), generator=gen)
    if delay is None:
        d = torch.tensor(cfg.delays)[torch.randint(len(cfg.delays), (n,), generator=gen)]
    else:
        d = torch.full((n,), int(delay))
    x = torch.zeros(T, n, K + 1)
    onset = 1 + D - d  # (n,): the cue ends exactly d steps before the go window
    t = torch.arange(T).unsqueeze(1)  # (T, 1)
    cue = (t >= onset) & (t < onset + cfg.cue_len)  # (T, n)
    x[..., :K] = cue.unsqueeze(-1).float() * F.one_hot(y, K).float()  # (T, n, K)
    if cfg.distractor_rate > 0:
        window = (t >= onset + cfg.cue_len) & (t < T - cfg.recall_len)  # (T, n): the d delay steps
        event = (torch.rand(T, n, generator=gen) < cfg.distractor_rate) & window
        sym = torch.randint(K, (T, n), generator=gen)
        x[..., :K] += event.unsqueeze(-1).float() * F.one_hot(sym, K).float()
    x[T - cfg.recall_len :, :, K] = 1.0
    return x, y, d


class SpikingRecall(nn.Module):
    """Recurrent LIF layer (with or without astrocytes) + linear readout of the mean spikes over
    the go window. ``x [T, B, K+1] -> logits [B, K]``."""

    def __init__(self, cfg: Config, astro: bool) -> None:
        super().__init__()
        self.recall_len = cfg.recall_len
        self.rnn = RecurrentAstroLIF(cfg.symbols + 1, cfg.hidden, cfg.groups, astro=astro, beta=cfg.beta,
                                     threshold=cfg.threshold, surrogate=cfg.surrogate, mode=cfg.mode,
                                     gamma=cfg.gamma, lambda_a=cfg.lambda_a)
        self.readout = nn.Linear(cfg.hidden, cfg.symbols)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, _ = self.rnn(x)  # (T, B, H)
        return self.readout(s[-self.recall_len :].mean(0))


class LSTMRecall(nn.Module):
    """LSTM reference with the same readout (mean hidden state over the go window)."""

    def __init__(self, cfg: Config, hidden: int) -> None:
        super().__init__()
        self.recall_len = cfg.recall_len
        self.lstm = nn.LSTM(cfg.symbols + 1, hidden)
        self.readout = nn.Linear(hidden, cfg.symbols)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)  # (T, B, hidden)
        return self.readout(h[-self.recall_len :].mean(0))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def lstm_hidden_for(cfg: Config, target: int) -> int:
    """LSTM hidden size whose parameter count is closest to ``target``."""
    def count(h: int) -> int:
        return 4 * (h * (cfg.symbols + 1) + h * h + 2 * h) + h * cfg.symbols + cfg.symbols
    return min(range(1, 4 * cfg.hidden), key=lambda h: abs(count(h) - target))


def build(cfg: Config, arm: str) -> nn.Module:
    if arm == "lstm":
        return LSTMRecall(cfg, lstm_hidden_for(cfg, n_params(SpikingRecall(cfg, astro=False))))
    return SpikingRecall(cfg, astro=(arm == "astro"))


# ---------------------------------------------------------------------------------------- study
@register
class AstroSNN(Study):
    key = "astrosnn"
    title = "Astrocyte-modulated spiking units vs plain recurrent LIF on delayed recall"
    arxiv = "2312.07625"
    family = "C"
    Config = Config
    threads = 1
    claims = CLAIMS

    def validate(self, cfg: Config) -> None:
        if not cfg.delays or any(not isinstance(d, int) or d < 0 for d in cfg.delays):
            raise ValueError(f"delays: expected non-negative ints, got {cfg.delays}")
        if len(set(cfg.delays)) != len(cfg.delays):
            raise ValueError(f"delays: expected distinct values, got {cfg.delays}")
        for name in ("symbols", "cue_len", "recall_len", "hidden", "groups", "steps", "batch_size",
                     "test_per_delay", "log_every"):
            if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(cfg, name)!r}")
        if cfg.symbols < 2:
            raise ValueError(f"symbols: expected >= 2, got {cfg.symbols}")
        if cfg.hidden % cfg.groups:
            raise ValueError(f"groups: expected a divisor of hidden={cfg.hidden}, got {cfg.groups}")
        if cfg.mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {cfg.mode!r}")
        if not 0 < cfg.beta < 1 or not 0 < cfg.lambda_a < 1:
            raise ValueError(f"beta and lambda_a: expected numbers in (0, 1), got {cfg.beta}, {cfg.lambda_a}")
        if not 0.0 <= cfg.distractor_rate <= 1.0:
            raise ValueError(f"distractor_rate: expected a probability in [0, 1], got {cfg.distractor_rate}")
        if not cfg.lr > 0 or not cfg.threshold > 0:
            raise ValueError(f"lr and threshold: expected positive numbers, got {cfg.lr}, {cfg.threshold}")
        unknown = [a for a in cfg.arms if a not in ARMS]
        if unknown or len(set(cfg.arms)) != len(cfg.arms) or not {"plain", "astro"} <= set(cfg.arms):
            raise ValueError(f"arms: expected distinct names from {ARMS} including 'plain' and 'astro', "
                             f"got {cfg.arms}")
        get_surrogate(cfg.surrogate, "surrogate")
        p_plain, p_astro = (n_params(SpikingRecall(cfg, a)) for a in (False, True))
        if abs(p_astro - p_plain) > 0.02 * p_plain:
            raise ValueError(f"groups: the astrocytes add {p_astro - p_plain} parameters to {p_plain} "
                             "(> 2%); use fewer groups or a larger hidden size")

    # ------------------------------------------------------------------------------------------
    def run(self, cfg: Config, run: Any) -> dict:
        self.validate(cfg)
        results: dict[str, Any] = {}
        start_arm, start_step, resume = 0, 0, None
        restored = run.restore()
        if restored is not None:
            _, state = restored
            results = state["results"]
            start_arm, start_step = int(state["arm_index"]), int(state["arm_step"])
            resume = state.get("live")
        for i in range(start_arm, len(cfg.arms)):
            arm = cfg.arms[i]
            results[arm] = self._train_arm(cfg, run, i, arm, results, start_step if i == start_arm else 0,
                                           resume if i == start_arm else None)
            resume = None
        summary: dict[str, Any] = {"delays": list(cfg.delays), "arms": list(cfg.arms), **results}
        summary["params"] = {a: results[a]["params"] for a in cfg.arms}
        summary["gap_longest"] = _acc_gap_longest(summary)
        summary["gap_mean"] = _acc_gap_mean(summary)
        self._figure(run, cfg, summary)
        return summary

    def _train_arm(self, cfg: Config, run: Any, index: int, arm: str, results: dict, step0: int,
                   live: dict | None) -> dict[str, Any]:
        # the same initial weights draw and batch stream for both spiking arms of a seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(run.seed * 7919 + 11)
            model = build(cfg, arm)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        data_gen = torch.Generator().manual_seed(run.seed * 7919 + 23)
        losses: list[float] = []
        if live is not None:
            model.load_state_dict(live["model"])
            opt.load_state_dict(live["opt"])
            data_gen.set_state(live["gen"])
            losses = list(live["losses"])
        offset = index * cfg.steps  # global step counter across arms (for logs and checkpoints)
        total, seen = 0.0, 0
        for step in range(step0, cfg.steps):
            model.train()
            x, y, _ = delayed_recall_batch(cfg, cfg.batch_size, data_gen)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, seen = total + float(loss.detach()), seen + 1
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                losses.append(total / seen)
                run.log(offset + done, arm=arm, train_loss=losses[-1])
                total, seen = 0.0, 0
                if done < cfg.steps and any(run.should_checkpoint(offset + s)
                                            for s in range(done - cfg.log_every + 1, done + 1)):
                    live_state = {"model": model.state_dict(), "opt": opt.state_dict(),
                                  "gen": data_gen.get_state(), "losses": losses}
                    run.checkpoint(offset + done, {"results": results, "arm_index": index,
                                                   "arm_step": done, "live": live_state})
        res = self._evaluate(cfg, run, model)
        res["params"] = n_params(model)
        res["train_loss"] = losses
        if arm == "astro":
            res["gamma"] = model.rnn.cell.gamma.detach().tolist()
        run.log(offset + cfg.steps, arm=arm, mean_acc=sum(res["acc_by_delay"].values()) / len(cfg.delays),
                **{f"acc_d{d}": a for d, a in res["acc_by_delay"].items()})
        done_results = {**results, arm: res}
        run.checkpoint(offset + cfg.steps, {"results": done_results, "arm_index": index + 1, "arm_step": 0})
        return res

    @staticmethod
    def _evaluate(cfg: Config, run: Any, model: nn.Module) -> dict[str, Any]:
        model.eval()
        acc, rate = {}, {}
        gen = torch.Generator().manual_seed(run.seed * 7919 + 101)  # the same test set for every arm
        with torch.no_grad():
            for d in cfg.delays:
                x, y, _ = delayed_recall_batch(cfg, cfg.test_per_delay, gen, delay=d)
                acc[str(d)] = float((model(x).argmax(1) == y).double().mean())
                if isinstance(model, SpikingRecall):
                    s, _ = model.rnn(x)
                    rate[str(d)] = float(s.mean())
        out: dict[str, Any] = {"acc_by_delay": acc}
        if rate:
            out["rate_by_delay"] = rate
        return out

    @staticmethod
    def _figure(run: Any, cfg: Config, summary: dict) -> None:
        styles = {"plain": ("tab:blue", "o", "recurrent LIF"),
                  "astro": ("tab:orange", "s", "LIF + astrocytes"),
                  "lstm": ("tab:gray", "^", "LSTM (reference)")}
        fig = run.figure(figsize=(5, 3.6))
        ax = fig.subplots()
        ds = list(cfg.delays)
        for arm in cfg.arms:
            color, marker, label = styles[arm]
            accs = [summary[arm]["acc_by_delay"][str(d)] for d in ds]
            ax.plot(ds, accs, marker=marker, color=color, label=f"{label} ({summary[arm]['params']} params)")
        ax.axhline(1.0 / cfg.symbols, color="k", lw=0.8, ls=":", label="chance")
        ax.set(xlabel="delay D (steps)", ylabel="test accuracy", ylim=(0, 1.02),
               title=f"delayed recall, K={cfg.symbols}, seed {run.seed}")
        if len(ds) > 1 and min(ds) > 0 and max(ds) / min(ds) >= 8:
            ax.set_xscale("log")
        ax.legend(fontsize=7)
        fig.tight_layout()
        run.save_figure("accuracy_vs_delay", fig)


__all__ = ["AstroSNN", "Config", "SpikingRecall", "LSTMRecall", "delayed_recall_batch", "build", "n_params",
           "lstm_hidden_for", "ARMS"]
