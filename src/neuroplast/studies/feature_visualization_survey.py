"""feature-visualization-survey: activation maximisation with and without the regulariser stack.

Paper: Nguyen, Yosinski & Clune 2019, "Understanding Neural Networks via Feature Visualization: A survey"
(arXiv:1904.08939). AM: x* = argmax_x a_i(T(x)) - lambda_2 ||x||^2 - lambda_TV TV(x) (eq. 1), Adam lr 0.05.

Setting. MNIST-5k (or 8x8 digits, ``dataset``); its training split is cut in two halves A / B at random.
The network C to visualise (``SmallCNN``) learns on A; an independent classifier D (``OtherCNN``: another
architecture, other images, another seed) learns on B. Targets: the 10 class logits (site ``fc2``) and the
first ``channels`` channels of ``conv2`` (objective = mean channel activation, pre-ReLU), ``restarts``
images each. Two methods, settings fixed before any run:

- pixel AM (unregularised): x = sigmoid(p), p ~ N(0, 0.01^2), no transform, no prior;
- regularised AM: Fourier parameterisation (1/f decay 1), lucid's transform stack scaled to the image
  size (jitter, scale 0.9-1.1, rotate +-10 deg, jitter), l2 = 0.01 * ||x||^2, tv = 0.05 * TV(x). (These
  two weights were picked in a prototype on the class logits, where 3 weight pairs all gave recognition
  ~1.0; the conv2 channels were not looked at before the verify runs.)

References per target unit, on C: mean and max of a_i over the real test images, and over
``noise_samples`` uniform-noise images.

Claims (every seed; thresholds fixed before the first run):
(1) pixel AM drives the unit "far above" real data and noise: the fraction of targets whose maximised
    activation (mean over restarts) exceeds max(max over real test images, max over noise) >= 0.9;
(2) the same for regularised AM, >= 0.9;
(3) the independent classifier D recognises the target class of regularised-AM images "far more often"
    than of pixel-AM images: recognition rate (regularised) - (pixel) >= 0.2.
Result (quick, seeds 0-2; settings and thresholds unchanged after the runs): (1) holds on every seed
(every logit and channel target: pixel-AM activation 1.3-2.6x the real-data max for logits). (2) does NOT
hold: 0.61 / 0.56 / 0.50. The regularised images beat real max and noise max on 10 / 10 / 9 of the 10
logits but on only 1 / 0 / 0 of the 8 conv2 channels: the L2 and TV weights are fixed for all targets,
and a channel's mean activation (~0.2-2) is ~10x smaller than a logit's, so the priors dominate there.
(3) does NOT hold: 0.0 on every seed. D already recognises 100 / 93 / 90% of the unregularised pixel-AM
images (the AM patterns of this small CNN transfer to another MNIST classifier), and the regularised ones
equally often, so the stack has no room to do better on this proxy. The summary also gives, as extra
numbers (no claim), pixel-AM images stopped where they first reach the regularised image's activation
(``pixel_matched``: recognised 80 / 83 / 70%) and mean nearest-neighbour distances to the training set
(regularised 11.1-12.1 < pixel 13.7-14.1). Tried (diagnostic, seed 0, not the preset): Fourier +
transforms without L2 and TV (``--set l2=0 --set tv=0``): (2) then holds (18 / 18 targets, 1.2-2.3x the
real max) and (3) still gives 0.0 (both methods recognised 100%). Full setting (seed 0, ~50 s CPU):
(1) 1.0, (2) 0.46 (logits 10 / 10, channels 2 / 16), (3) 0.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from neuroplast.data import digits, mnist
from neuroplast.studies import Claim, Study, register
from neuroplast.visualize import (
    AMResult,
    OtherCNN,
    SmallCNN,
    accuracy,
    fit_classifier,
    maximize,
    nearest_neighbour_distance,
    recognition_rate,
    site_activations,
    standard_transforms,
)

LOGIT_SITE, CHANNEL_SITE = "fc2", "conv2"


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"  # "mnist" (MNIST-5k) or "digits" (8x8)
    epochs: int = 10  # classifier training epochs (C and D)
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 8  # SmallCNN conv1 channels (conv2 has 2 * width)
    hidden: int = 64
    channels: int = 16  # conv2 channels maximised (0: logits only)
    restarts: int = 5  # AM images per target
    steps: int = 512
    am_lr: float = 0.05
    sd: float = 0.01  # initial parameter noise
    decay: float = 1.0  # Fourier 1/f^decay
    l2: float = 0.01  # regularised AM: weight of ||x||^2
    tv: float = 0.05  # regularised AM: weight of TV(x)
    noise_samples: int = 1000

    @classmethod
    def quick(cls) -> Config:
        return cls(epochs=6, channels=8, restarts=3, steps=256, noise_samples=500)


def validate_config(cfg: Config) -> None:
    """ValueError naming the first bad field of an AM study config."""
    if cfg.dataset not in ("mnist", "digits"):
        raise ValueError(f"dataset: expected 'mnist' or 'digits', got {cfg.dataset!r}")
    for name in ("epochs", "batch_size", "width", "hidden", "restarts", "steps", "noise_samples"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {getattr(cfg, name)}")
    if not 0 <= cfg.channels <= 2 * cfg.width:
        raise ValueError(f"channels: expected 0..{2 * cfg.width} (conv2 has 2 * width), got {cfg.channels}")
    for name in ("lr", "am_lr"):
        if not (math.isfinite(getattr(cfg, name)) and getattr(cfg, name) > 0):
            raise ValueError(f"{name}: expected a float > 0, got {getattr(cfg, name)}")
    for name in ("sd", "l2", "tv"):
        if not (math.isfinite(getattr(cfg, name)) and getattr(cfg, name) >= 0):
            raise ValueError(f"{name}: expected a float >= 0, got {getattr(cfg, name)}")
    if not math.isfinite(cfg.decay):
        raise ValueError(f"decay: expected a finite float, got {cfg.decay}")


# -- shared with dgn-am ---------------------------------------------------------------------------------
def load_data(cfg: Config, seed: int) -> Any:
    return mnist(seed=seed) if cfg.dataset == "mnist" else digits(seed=seed)


def build_classifiers(cfg: Config, shape: tuple[int, ...], seed: int) -> tuple[nn.Module, nn.Module]:
    """C (SmallCNN) and D (OtherCNN) with initial weights drawn from seeds derived from ``seed``."""
    torch.manual_seed(seed * 7919 + 11)
    c = SmallCNN(shape, 10, cfg.width, cfg.hidden)
    torch.manual_seed(seed * 7919 + 13)
    d = OtherCNN(shape, 10)
    return c, d


def train_classifiers(cfg: Config, ds: Any, c: nn.Module, d: nn.Module, gen: torch.Generator) -> dict:
    """C learns on a random half A of the training split, D on the other half B."""
    n = len(ds.x_train)
    perm = torch.randperm(n, generator=gen)
    a, b = perm[: n // 2], perm[n // 2 :]
    fit_classifier(c, ds.x_train[a], ds.y_train[a], epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                   generator=gen)
    fit_classifier(d, ds.x_train[b], ds.y_train[b], epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                   generator=gen)
    return {"acc_C": accuracy(c, ds.x_test, ds.y_test), "acc_D": accuracy(d, ds.x_test, ds.y_test)}


def classifier_phase(cfg: Config, ds: Any, c: nn.Module, d: nn.Module, gen: torch.Generator
                     ) -> Callable[[dict], dict]:
    """The first phase of both AM studies: train C and D, keep their weights and C's unit references."""

    def train(st: dict) -> dict:
        st["train"] = train_classifiers(cfg, ds, c, d, gen)
        st["C"], st["D"] = c.state_dict(), d.state_dict()
        st["refs"] = unit_references(cfg, c, ds, gen)
        return st["train"]

    return train


def targets(cfg: Config) -> list[tuple[str, list[int]]]:
    out = [(LOGIT_SITE, list(range(10)))]
    if cfg.channels:
        out.append((CHANNEL_SITE, list(range(cfg.channels))))
    return out


def unit_references(cfg: Config, c: nn.Module, ds: Any, gen: torch.Generator) -> dict:
    """Per target neuron: mean / max of a_i over the real test images and over uniform-noise images,
    and the index of the test image that drives it most."""
    noise = torch.rand(cfg.noise_samples, *ds.x_test.shape[1:], generator=gen)
    out = {}
    for site, neurons in targets(cfg):
        real = site_activations(c, site, ds.x_test)[:, neurons]  # (N, K)
        nz = site_activations(c, site, noise)[:, neurons]
        out[site] = {
            "real_mean": real.mean(0).tolist(),
            "real_max": real.max(0).values.tolist(),
            "noise_mean": nz.mean(0).tolist(),
            "noise_max": nz.max(0).values.tolist(),
            "top_real": real.argmax(0).tolist(),
        }
    return out


def pixel_am(cfg: Config, c: nn.Module, site: str, neurons: list[int], shape: tuple[int, ...],
             gen: torch.Generator, match: Tensor | None = None) -> AMResult:
    """Unregularised AM in pixel space (the survey's baseline)."""
    return maximize(c, site, neurons, param="pixel", shape=shape, restarts=cfg.restarts, steps=cfg.steps,
                    lr=cfg.am_lr, sd=cfg.sd, match=match, generator=gen)


def regularised_am(cfg: Config, c: nn.Module, site: str, neurons: list[int], shape: tuple[int, ...],
                   gen: torch.Generator) -> AMResult:
    """Fourier parameterisation + random transforms + L2 + TV."""
    return maximize(c, site, neurons, param="fourier", shape=shape, restarts=cfg.restarts, steps=cfg.steps,
                    lr=cfg.am_lr, sd=cfg.sd, decay=cfg.decay, transforms=standard_transforms(shape[-1]),
                    l2=cfg.l2, tv=cfg.tv, generator=gen)


def describe(res: AMResult | dict, restarts: int, refs: dict, d: nn.Module | None, data: Tensor | None,
             images: Tensor | None = None) -> dict:
    """Per-target activation (mean over restarts), above-reference flags, recognition by D, NN distance."""
    if isinstance(res, AMResult):
        acts, imgs, tg = res.activations, res.images if images is None else images, res.neurons
    else:
        acts, imgs, tg = res["activations"], res["images"] if images is None else images, res["neurons"]
    k = len(refs["real_max"])
    act = acts.reshape(k, restarts).mean(1)  # (K,)
    ref = torch.maximum(torch.tensor(refs["real_max"]), torch.tensor(refs["noise_max"]))
    out: dict[str, Any] = {
        "activation": act.tolist(),
        "above_real_max": (act > torch.tensor(refs["real_max"])).tolist(),
        "above_ref": (act > ref).tolist(),
        "ratio_to_real_max": (act / torch.tensor(refs["real_max"])).tolist(),
    }
    if d is not None:
        out["recognised"] = recognition_rate(d, imgs, tg)
    if data is not None:
        out["nn_distance"] = float(nearest_neighbour_distance(imgs, data).mean())
    return out


def pack(res: AMResult) -> dict:
    """The tensors of an AMResult that a checkpoint keeps."""
    out = {"images": res.images, "activations": res.activations, "neurons": res.neurons}
    if res.matched_images is not None:
        out.update(matched_images=res.matched_images, matched_activations=res.matched_activations,
                   matched_steps=res.matched_steps)
    if res.codes is not None:
        out["codes"] = res.codes
    return out


def run_phases(run: Any, state: dict, phases: list[tuple[str, Callable[[dict], dict]]]) -> None:
    """Run the phases not done yet; after each: log its metrics, checkpoint when the runner asks."""
    gen = run.generator
    for i in range(int(state.get("phases_done", 0)), len(phases)):
        name, fn = phases[i]
        metrics = fn(state)
        state["phases_done"] = i + 1
        run.log(i + 1, phase=name, **metrics)
        if run.should_checkpoint(i + 1):
            run.checkpoint(i + 1, {**state, "gen": gen.get_state()})


def restore(run: Any, state: dict) -> dict:
    restored = run.restore()
    if restored is not None:
        state = restored[1]
        run.generator.set_state(state.pop("gen"))
    return state


def image_grid(run: Any, name: str, columns: list[tuple[str, Tensor]], rows: list[str], title: str) -> None:
    """One figure: a row per target, a column per method (first restart)."""
    fig = run.figure(figsize=(1.1 * len(columns) + 0.6, 1.05 * len(rows) + 0.5))
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for j, (label, imgs) in enumerate(columns):
        for i in range(len(rows)):
            ax = axes[i][j]
            ax.imshow(imgs[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=8)
            if j == 0:
                ax.set_ylabel(rows[i], fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    run.save_figure(name, fig)


def frac(flags: list[bool]) -> float:
    return sum(bool(f) for f in flags) / len(flags)


def _all_targets(s: dict, method: str, key: str) -> list[bool]:
    return [f for site in s["sites"] for f in s["sites"][site][method][key]]


@register
class FeatureVisualizationSurvey(Study):
    key = "feature-visualization-survey"
    title = "Activation maximisation on a small CNN: pixel AM vs the regularised stack"
    arxiv = "1904.08939"
    family = "A"
    Config = Config
    threads = 1
    claims = (
        Claim(
            "pixel-am-above-real-and-noise",
            "fraction of targets (10 logits + conv2 channels) whose pixel-AM activation exceeds the max over "
            "real test images and over noise >= 0.9",
            lambda s: frac(_all_targets(s, "pixel", "above_ref")),
            ">=",
            0.9,
        ),
        Claim(
            "regularised-am-above-real-and-noise",
            "fraction of targets whose regularised-AM activation exceeds the max over real test images and "
            "over noise >= 0.9",
            lambda s: frac(_all_targets(s, "regularised", "above_ref")),
            ">=",
            0.9,
        ),
        Claim(
            "regularised-recognised-more",
            "independent classifier's recognition rate of class-logit AM images: regularised - pixel >= 0.2",
            lambda s: (s["sites"][LOGIT_SITE]["regularised"]["recognised"]
                       - s["sites"][LOGIT_SITE]["pixel"]["recognised"]),
            ">=",
            0.2,
        ),
    )

    def validate(self, cfg: Config) -> None:
        validate_config(cfg)

    def run(self, cfg: Config, run: Any) -> dict:
        self.validate(cfg)
        gen = run.generator
        ds = load_data(cfg, run.seed)
        shape = tuple(ds.x_train.shape[1:])
        c, d = build_classifiers(cfg, shape, run.seed)
        state = restore(run, {"phases_done": 0})
        if state["phases_done"] >= 1:
            c.load_state_dict(state["C"])
            d.load_state_dict(state["D"])
        c.eval()
        d.eval()

        def am(method: str) -> Callable[[dict], dict]:
            def phase(st: dict) -> dict:
                st[method] = {}
                for site, neurons in targets(cfg):
                    if method == "pixel":
                        res = pixel_am(cfg, c, site, neurons, shape, gen)
                    else:
                        res = regularised_am(cfg, c, site, neurons, shape, gen)
                    st[method][site] = pack(res)
                return {f"{s}_mean_act": float(st[method][s]["activations"].mean()) for s in st[method]}

            return phase

        run_phases(run, state, [("train", classifier_phase(cfg, ds, c, d, gen)), ("pixel", am("pixel")),
                                ("regularised", am("regularised"))])

        summary: dict[str, Any] = {"train": state["train"], "sites": {}}
        for site, _neurons in targets(cfg):
            refs = state["refs"][site]
            entry: dict[str, Any] = {"refs": refs}
            is_logit = site == LOGIT_SITE
            for method in ("pixel", "regularised"):
                entry[method] = describe(state[method][site], cfg.restarts, refs, d if is_logit else None,
                                         ds.x_train if is_logit else None)
            summary["sites"][site] = entry
        # pixel AM stopped where it first reaches each regularised image's activation (equal activation)
        reg = state["regularised"][LOGIT_SITE]
        matched = pixel_am(cfg, c, LOGIT_SITE, list(range(10)), shape,
                           torch.Generator().manual_seed(run.seed * 7919 + 17), match=reg["activations"])
        summary["sites"][LOGIT_SITE]["pixel_matched"] = {
            "recognised": recognition_rate(d, matched.matched_images, matched.neurons),
            "nn_distance": float(nearest_neighbour_distance(matched.matched_images, ds.x_train).mean()),
            "mean_step": float(matched.matched_steps.double().mean()),
        }
        self._figures(run, cfg, ds, state, matched)
        return summary

    @staticmethod
    def _figures(run: Any, cfg: Config, ds: Any, state: dict, matched: AMResult) -> None:
        r = cfg.restarts
        lg = LOGIT_SITE
        top = ds.x_test[torch.tensor(state["refs"][lg]["top_real"])]
        image_grid(run, "am_grid", [
            ("top real", top),
            ("pixel AM", state["pixel"][lg]["images"][::r]),
            ("pixel, equal act.", matched.matched_images[::r]),
            ("regularised AM", state["regularised"][lg]["images"][::r]),
        ], [f"class {k}" for k in range(10)], "class logits of the small CNN")
        if cfg.channels:
            ch = CHANNEL_SITE
            top = ds.x_test[torch.tensor(state["refs"][ch]["top_real"])]
            image_grid(run, "channel_grid", [
                ("top real", top),
                ("pixel AM", state["pixel"][ch]["images"][::r]),
                ("regularised AM", state["regularised"][ch]["images"][::r]),
            ], [f"ch {k}" for k in range(cfg.channels)], "conv2 channels (mean activation)")
