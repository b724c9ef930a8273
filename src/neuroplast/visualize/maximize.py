"""Activation maximisation (AM): synthesise the inputs a neuron prefers.

x* = argmax_x a_i(T(x)) - lambda_2 ||x - c||^2 - lambda_TV TV(x) - lambda_h ||h||^2
(arXiv:1904.08939, eq. 1; DGN-AM arXiv:1605.09304, eq. 2 when x = G(h)). x is rendered by a
parameterisation (pixels, a Fourier basis, the code h of a generator), T is a random transform drawn at
every step, and a_i is neuron i of a site: its value for a last-axis site (Linear, RNN), the mean of its
channel over all other positions for a channel site (Conv: the objective "layer:ch" of lucid). Adam
ascends the objective; only the parameterisation's tensors are optimised (``torch.autograd.grad``), the
model's weights, gradients and train/eval mode are left as they were.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from neuroplast.core.sites import Site, resolve_site
from neuroplast.visualize.parameterize import FourierImage, Parameterization, PixelImage
from neuroplast.visualize.transforms import l2 as l2_prior
from neuroplast.visualize.transforms import total_variation

__all__ = ["AMResult", "maximize", "neuron_activation"]


@dataclass(frozen=True)
class AMResult:
    """What ``maximize`` found (CPU tensors); B = len(neurons) * restarts, ordered neuron-major.

    images (B, C, H, W): the final rendering, untransformed; activations (B,): a_i of those images;
    neurons (B,): the target neuron of each row; history (steps, B): a_i during optimisation (of the
    transformed image scored at that step); codes (B, d) for a CodeImage, else None; matched_images /
    matched_steps: with ``match``, the first rendering whose untransformed a_i reached ``match`` (the
    final one and step ``steps`` if it never did), else None.
    """

    images: Tensor
    activations: Tensor
    neurons: Tensor
    history: Tensor
    codes: Tensor | None = None
    matched_images: Tensor | None = None
    matched_activations: Tensor | None = None
    matched_steps: Tensor | None = None


def neuron_activation(out: Tensor, axis: int, neurons: Tensor) -> Tensor:
    """a_i per sample: ``out`` (B, ...) with neurons on ``axis``; the mean over every other non-batch
    position (spatial, time) of neuron ``neurons[b]`` for sample b; shape (B,)."""
    if out.dim() < 2:
        raise ValueError(f"site output: expected (B, ...) with a neuron axis, got shape {tuple(out.shape)}")
    ax = axis % out.dim()
    if ax == 0:
        raise ValueError("site axis: the neuron axis is the batch axis 0; AM needs batch-first outputs")
    n = out.shape[ax]
    per = out.movedim(ax, -1).reshape(out.shape[0], -1, n).mean(1)  # (B, N)
    return per.gather(1, neurons.to(per.device)[:, None])[:, 0]


def _as_neurons(neuron: object) -> list[int]:
    if isinstance(neuron, Tensor):
        if neuron.dim() > 1 or neuron.is_floating_point() or neuron.is_complex() \
                or neuron.dtype == torch.bool:
            raise ValueError(f"neuron: expected an int or 1-D integer tensor, got {neuron.dtype} "
                             f"shaped {tuple(neuron.shape)}")
        items = [int(v) for v in neuron.reshape(-1)]
    elif isinstance(neuron, numbers.Integral) and not isinstance(neuron, bool):
        items = [int(neuron)]
    elif isinstance(neuron, Sequence) and not isinstance(neuron, str):
        items = list(neuron)
        for v in items:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ValueError(f"neuron: expected ints, got {v!r} in {neuron!r}")
        items = [int(v) for v in items]
    else:
        raise ValueError(f"neuron: expected an int or a list of ints, got {neuron!r}")
    if not items or min(items) < 0:
        raise ValueError(f"neuron: expected non-negative indices (at least one), got {items}")
    return items


def _check_int(v: object, name: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name}: expected an int >= {lo}, got {v!r}")
    return int(v)


def _check_weight(v: object, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite float >= 0, got {v!r}")
    return float(v)


def maximize(
    model: nn.Module,
    site: Site | str,
    neuron: int | Sequence[int] | Tensor,
    *,
    param: str | Parameterization = "pixel",
    shape: Sequence[int] | None = None,
    restarts: int = 1,
    steps: int = 512,
    lr: float = 0.05,
    transforms: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
    l2: float = 0.0,
    l2_center: float = 0.0,
    tv: float = 0.0,
    tv_beta: float = 1.0,
    code_l2: float = 0.0,
    sd: float = 0.01,
    decay: float = 1.0,
    match: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> AMResult:
    """Maximise neuron(s) ``neuron`` of ``site`` (a Site or a module name of ``model``) by gradient ascent.

    ``param``: ``"pixel"`` (PixelImage) or ``"fourier"`` (FourierImage) built from ``shape`` (C, H, W),
    ``sd``, ``decay`` and ``generator``; or a ready Parameterization with batch len(neurons) * restarts
    (e.g. a CodeImage for a generator prior). Penalties (weights >= 0): ``l2`` * sum (x - l2_center)^2,
    ``tv`` * TV^tv_beta(x), ``code_l2`` * param.penalty(). ``transforms(x, generator)`` is applied
    before scoring at each step. ``match`` (B,): activation levels at which to record each image (for
    comparisons at equal activation). Deterministic given ``generator``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    s = resolve_site(model, site)
    neurons = _as_neurons(neuron)
    restarts = _check_int(restarts, "restarts", 1)
    steps = _check_int(steps, "steps", 1)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a finite float > 0, got {lr!r}")
    l2, tv, code_l2 = _check_weight(l2, "l2"), _check_weight(tv, "tv"), _check_weight(code_l2, "code_l2")
    if transforms is not None and not callable(transforms):
        raise TypeError(f"transforms: expected a callable (x, generator), got {type(transforms).__name__}")
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    targets = torch.tensor(neurons, dtype=torch.long).repeat_interleave(restarts)  # (B,)
    b = targets.numel()
    if isinstance(param, str):
        if shape is None:
            raise ValueError(f"shape: expected (C, H, W) for param={param!r}, got None")
        if param == "pixel":
            p: Parameterization = PixelImage(b, shape, sd=sd, generator=generator)
        elif param == "fourier":
            p = FourierImage(b, shape, sd=sd, decay=decay, generator=generator)
        else:
            raise ValueError(f"param: expected 'pixel', 'fourier' or a Parameterization, got {param!r}")
        p = p.to(device)  # drawn on the CPU (the generator's device), then moved next to the model
    elif isinstance(param, Parameterization):
        p = param
        if p.batch != b:
            raise ValueError(f"param: expected a parameterisation of batch {b} (= {len(neurons)} neurons x "
                             f"{restarts} restarts), got batch {p.batch}")
    else:
        raise TypeError(f"param: expected 'pixel', 'fourier' or a Parameterization, "
                        f"got {type(param).__name__}")
    if match is not None:
        if not isinstance(match, Tensor) or match.shape != (b,):
            raise ValueError(f"match: expected a tensor shaped ({b},), got {match!r:.80}")
        match = match.detach().float().to(device)

    captured: list[Tensor] = []

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        captured.append(out[0] if isinstance(out, tuple | list) else out)

    def score(x: Tensor) -> Tensor:
        captured.clear()
        model(x)
        if not captured:
            raise RuntimeError(f"site {s.name!r} was not called in the forward pass")
        out = captured[-1]
        if out.shape[0] != x.shape[0]:
            raise ValueError(f"site {s.name!r}: output batch {out.shape[0]} != input batch {x.shape[0]}; "
                             "AM needs batch-first site outputs")
        n = out.shape[s.axis % out.dim()]
        if max(neurons) >= n:
            raise ValueError(f"neuron: site {s.name!r} has {n} neurons on axis {s.axis}, "
                             f"got index {max(neurons)}")
        return neuron_activation(out, s.axis, targets)

    opt = torch.optim.Adam(list(p.parameters()), lr=float(lr))
    was_training = model.training
    handle = s.module.register_forward_hook(hook)
    history = torch.empty(steps, b, device=device)
    matched = matched_act = matched_step = None
    if match is not None:
        matched, matched_act = None, torch.full((b,), math.nan, device=device)
        matched_step = torch.full((b,), steps, dtype=torch.long, device=device)
    try:
        model.eval()
        params = list(p.parameters())
        for step in range(steps):
            x = p()
            xt = transforms(x, generator) if transforms is not None else x
            a = score(xt)  # (B,)
            history[step] = a.detach()
            if match is not None:
                a_clean = a.detach() if transforms is None else _score_no_grad(score, x)
                if matched is None:
                    matched = x.detach().clone()
                hit = (a_clean >= match) & (matched_step == steps)
                if bool(hit.any()):
                    matched[hit] = x.detach()[hit]
                    matched_act[hit] = a_clean[hit]
                    matched_step[hit] = step
            loss = -a.sum()
            if l2 > 0:
                loss = loss + l2 * l2_prior(x, l2_center).sum()
            if tv > 0:
                loss = loss + tv * total_variation(x, tv_beta).sum()
            if code_l2 > 0:
                loss = loss + code_l2 * p.penalty().sum()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"maximize: the objective became {float(loss)} at step {step}")
            grads = torch.autograd.grad(loss, params)
            for q, g in zip(params, grads, strict=True):
                q.grad = g
            opt.step()
            p.project()
        with torch.no_grad():
            final = p().detach()
            act = score(final).detach()
        if match is not None:
            never = matched_step == steps
            matched[never] = final[never]
            matched_act[never] = act[never]
    finally:
        handle.remove()
        model.train(was_training)
        for q in p.parameters():
            q.grad = None
    codes = p.code.detach().cpu().clone() if hasattr(p, "code") else None
    if match is not None:
        matched, matched_act, matched_step = matched.cpu(), matched_act.cpu(), matched_step.cpu()
    return AMResult(final.cpu(), act.cpu(), targets, history.cpu(), codes, matched, matched_act, matched_step)


def _score_no_grad(score: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    with torch.no_grad():
        return score(x.detach())
