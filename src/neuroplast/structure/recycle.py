"""Remedies for dormant neurons: ReDo recycling and DrM's soft-reset perturbation.

- ``recycle_dormant`` (ReDo, Sokar et al. 2023, arXiv:2302.12902): for each masked neuron i of a
  site, the incoming weights W_in[i, :] and bias b_in[i] of the layer producing it are re-drawn from
  that layer's default init, the outgoing weights W_out[:, i] of the next layer are set to 0, and the
  optimizer's per-parameter state (Adam exp_avg / exp_avg_sq, SGD momentum_buffer, ...) is zeroed
  for exactly those entries. With zero outgoing weights the network function is unchanged.
- ``perturb`` (DrM, Xu et al. 2023, arXiv:2310.19668): theta <- alpha * theta + (1 - alpha) * theta_fresh
  for every Linear/Conv layer, theta_fresh a fresh default init drawn with ``generator``; the optimizer
  state of the perturbed parameters is wiped (the reference code wipes it).
- ``perturb_factor``: DrM's alpha = clip(1 - k * beta, alpha_min, alpha_max), beta the dormant ratio
  (reference: k = 2, alpha_min = 0.2, alpha_max task-dependent, e.g. 0.6).

"Default init" is PyTorch's own for Linear/ConvNd (kaiming_uniform_(a=sqrt(5)) for the weight,
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias), drawn in that order with the given generator, so
``generator=torch.Generator().manual_seed(s)`` reproduces ``torch.manual_seed(s); layer.reset_parameters()``.
Every function validates all its input before it changes anything.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["RecycleReport", "recycle_dormant", "perturb", "perturb_factor", "fresh_parameters"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_LAYERS = (nn.Linear, *_CONV)


@dataclass(frozen=True)
class RecycleReport:
    """What ``recycle_dormant`` did: ``recycled`` of the ``total`` neurons of ``site``."""

    site: str
    incoming: str
    outgoing: str
    recycled: int
    total: int


def _check_generator(generator: Any) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")


def _check_optimizer(optimizer: Any) -> None:
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer: expected a torch.optim.Optimizer or None, got {type(optimizer).__name__}"
        )


@torch.no_grad()
def fresh_parameters(module: nn.Module, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Fresh default init of a Linear/ConvNd layer as new tensors {"weight", "bias"}; the layer is untouched.

    Same distribution and draw order as ``module.reset_parameters()``, but from ``generator``.
    """
    if not isinstance(module, _LAYERS):
        raise TypeError(
            f"module: expected nn.Linear or nn.Conv1d/2d/3d, got {type(module).__name__}; other layer types "
            "have no default init that neuroplast can redraw"
        )
    _check_generator(generator)
    device = generator.device if generator is not None else module.weight.device
    weight = torch.empty(module.weight.shape, dtype=module.weight.dtype, device=device)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    out = {"weight": weight.to(module.weight.device)}
    if module.bias is not None:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        bias = torch.empty(module.bias.shape, dtype=module.bias.dtype, device=device)
        nn.init.uniform_(bias, -bound, bound, generator=generator)
        out["bias"] = bias.to(module.bias.device)
    return out


# ----------------------------------------------------------------------------------------------
# ReDo recycling
# ----------------------------------------------------------------------------------------------


def _resolve_module(model: nn.Module, name: str, what: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
        hint = f"; closest: {close}" if close else f"; modules: {[n for n in modules if n][:10]}"
        raise ValueError(f"{what}: no module named {name!r} in the model{hint}")
    return modules[name]


def _site_name(model: nn.Module, site: Any) -> str:
    if isinstance(site, str):
        _resolve_module(model, site, "site")
        return site
    name, module = getattr(site, "name", None), getattr(site, "module", None)
    if isinstance(name, str) and isinstance(module, nn.Module):  # a neuroplast.core.Site
        if _resolve_module(model, name, "site") is not module:
            raise ValueError(f"site: Site {name!r} does not belong to this model")
        return name
    raise TypeError(f"site: expected a module name (str) or a Site, got {type(site).__name__}")


def _infer_layers(model: nn.Module, site: str) -> tuple[str | None, str | None]:
    """In module-registration order: the last Linear/Conv at or inside ``site``, and the first after it.

    That order is the execution order for nn.Sequential-style models; pass incoming=/outgoing= otherwise.
    """
    names = [n for n, _ in model.named_modules()]
    mods = dict(model.named_modules())
    start = names.index(site)
    end = start  # last index inside the site's subtree
    prefix = site + "." if site else ""
    while end + 1 < len(names) and (site == "" or names[end + 1].startswith(prefix)):
        end += 1
    incoming = next((n for n in reversed(names[: end + 1]) if isinstance(mods[n], _LAYERS)), None)
    outgoing = next((n for n in names[end + 1 :] if isinstance(mods[n], _LAYERS)), None)
    return incoming, outgoing


def _neuron_mask(mask: Any, n: int) -> torch.Tensor:
    if isinstance(mask, (list, tuple)):
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in mask):
            raise TypeError("mask: a list mask must hold neuron indices (int)")
        mask = torch.tensor(mask, dtype=torch.long)
    if not torch.is_tensor(mask):
        raise TypeError(
            f"mask: expected a bool Tensor (neurons,) or a list of indices, got {type(mask).__name__}"
        )
    if mask.dtype == torch.bool:
        if mask.shape != (n,):
            raise ValueError(
                f"mask: expected a bool Tensor of shape ({n},) (one entry per neuron), "
                f"got shape {tuple(mask.shape)}"
            )
        return mask.detach().cpu().clone()
    if mask.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8) and mask.ndim <= 1:
        idx = mask.detach().cpu().reshape(-1).long()
        if idx.numel() and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"mask: neuron indices must lie in [0, {n}), got {idx.tolist()}")
        out = torch.zeros(n, dtype=torch.bool)
        out[idx] = True
        return out
    raise TypeError(
        f"mask: expected a bool Tensor or integer indices, got dtype {mask.dtype}, shape {tuple(mask.shape)}"
    )


def _outgoing_columns(
    layer: nn.Module, name: str, mask: torch.Tensor, incoming_is_conv: bool
) -> torch.Tensor:
    """Bool mask over the input dimension (dim 1) of the outgoing layer's weight."""
    n = mask.numel()
    if isinstance(layer, nn.Linear):
        fan = layer.in_features
        if fan == n:
            return mask
        if incoming_is_conv and fan % n == 0:  # Conv -> Flatten -> Linear, channel-major
            return mask.repeat_interleave(fan // n)
        raise ValueError(
            f"outgoing: Linear {name!r} has in_features={fan}, which does not match the site's {n} neurons"
            + (" (nor a multiple of them for a flattened conv map)" if incoming_is_conv else "")
            + "; pass outgoing= the layer that reads these neurons"
        )
    if isinstance(layer, _CONV):
        if layer.groups != 1:
            raise TypeError(
                f"outgoing: grouped convolution {name!r} (groups={layer.groups}) is not supported"
            )
        if layer.in_channels != n:
            raise ValueError(
                f"outgoing: {type(layer).__name__} {name!r} has in_channels={layer.in_channels}, "
                f"expected the site's {n} neurons; pass outgoing="
            )
        return mask
    raise TypeError(f"outgoing: {name!r} is a {type(layer).__name__}; expected nn.Linear or nn.Conv1d/2d/3d")


def _zero_state(optimizer: torch.optim.Optimizer | None, param: torch.Tensor, index: tuple) -> None:
    """Zero the entries ``param[index]`` in every per-parameter optimizer state tensor shaped like param."""
    if optimizer is None or param not in optimizer.state:
        return
    for value in optimizer.state[param].values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value[index] = 0


@torch.no_grad()
def recycle_dormant(
    model: nn.Module,
    site: Any,
    mask: Any,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    *,
    incoming: str | None = None,
    outgoing: str | None = None,
    bias: str = "init",
) -> RecycleReport:
    """ReDo (arXiv:2302.12902): recycle the masked neurons of ``site``.

    For masked neurons i: W_in[i] <- fresh default init (drawn with ``generator``), b_in[i] <- fresh
    init (``bias="init"``) or 0 (``bias="zero"``, as the ReDo reference code), W_out[:, i] <- 0, and
    the optimizer state entries of those weights (exp_avg, exp_avg_sq, momentum_buffer, ...) <- 0
    (the step count is kept). Unmasked entries stay bit-identical.

    ``site``: module name or Site; a Linear/Conv site (DrM convention) is its own incoming layer, an
    activation site (ReDo convention) takes the preceding Linear/Conv in module order. ``incoming`` /
    ``outgoing`` name the producing / reading layers explicitly; they are inferred from module
    registration order, which is right for nn.Sequential-style models. A Conv site read by a Linear
    through a flatten has its channel's block of columns zeroed. ``mask``: bool Tensor (neurons,) or
    index list.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    _check_optimizer(optimizer)
    _check_generator(generator)
    if bias not in ("init", "zero"):
        raise ValueError(f"bias: expected 'init' or 'zero', got {bias!r}")
    site_name = _site_name(model, site)
    inferred_in, inferred_out = _infer_layers(model, site_name)
    in_name = incoming if incoming is not None else inferred_in
    out_name = outgoing if outgoing is not None else inferred_out
    if in_name is None:
        raise ValueError(f"incoming: no Linear/Conv layer precedes site {site_name!r}; pass incoming=")
    if out_name is None:
        raise ValueError(
            f"outgoing: no Linear/Conv layer follows site {site_name!r} (is it the output layer? ReDo does "
            "not recycle output neurons); pass outgoing="
        )
    in_layer = _resolve_module(model, in_name, "incoming")
    out_layer = _resolve_module(model, out_name, "outgoing")
    if not isinstance(in_layer, _LAYERS):
        raise TypeError(
            f"incoming: {in_name!r} is a {type(in_layer).__name__}; expected nn.Linear or nn.Conv1d/2d/3d"
        )
    if in_layer is out_layer:
        raise ValueError(f"incoming and outgoing are the same layer {in_name!r}")
    n = in_layer.weight.shape[0]  # out_features / out_channels
    neuron_mask = _neuron_mask(mask, n)
    cols = _outgoing_columns(out_layer, out_name, neuron_mask, isinstance(in_layer, _CONV))

    recycled = int(neuron_mask.sum())
    if recycled:
        fresh = fresh_parameters(in_layer, generator)  # drawn whole, so the draws do not depend on the mask
        rows = neuron_mask.to(in_layer.weight.device)
        in_layer.weight[rows] = fresh["weight"][rows]
        _zero_state(optimizer, in_layer.weight, (rows,))
        if in_layer.bias is not None:
            in_layer.bias[rows] = fresh["bias"][rows] if bias == "init" else 0.0
            _zero_state(optimizer, in_layer.bias, (rows,))
        cols = cols.to(out_layer.weight.device)
        out_layer.weight[:, cols] = 0.0
        _zero_state(optimizer, out_layer.weight, (slice(None), cols))
    return RecycleReport(site=site_name, incoming=in_name, outgoing=out_name, recycled=recycled, total=n)


# ----------------------------------------------------------------------------------------------
# DrM perturbation
# ----------------------------------------------------------------------------------------------


def perturb_factor(beta: float, k: float = 2.0, alpha_min: float = 0.2, alpha_max: float = 0.6) -> float:
    """DrM (arXiv:2310.19668): alpha = clip(1 - k * beta, alpha_min, alpha_max), beta the dormant ratio."""
    for name, value in (("beta", beta), ("alpha_min", alpha_min), ("alpha_max", alpha_max)):
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    if not isinstance(k, (int, float)) or not math.isfinite(k):
        raise ValueError(f"k: expected a finite number, got {k!r}")
    if alpha_min > alpha_max:
        raise ValueError(f"alpha_min ({alpha_min}) must be <= alpha_max ({alpha_max})")
    return float(min(max(1.0 - k * beta, alpha_min), alpha_max))


@torch.no_grad()
def perturb(
    model: nn.Module,
    alpha: float,
    generator: torch.Generator | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    modules: str | list[str] | None = None,
) -> dict[str, int]:
    """DrM soft reset (arXiv:2310.19668): theta <- alpha * theta + (1 - alpha) * theta_fresh.

    Applied to the weight and bias of every nn.Linear / nn.Conv1d/2d/3d (or only those whose names match
    the glob(s) ``modules``), in module order; theta_fresh is drawn per layer with ``generator`` (see
    ``fresh_parameters``). Other parameters (norms, embeddings) are left alone, as in the reference.
    alpha = 1 is the identity, alpha = 0 a full re-init. The optimizer state of the perturbed
    parameters is wiped (Adam restarts its moments and step count). Returns {layer name: parameters
    perturbed}.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"alpha: expected a number in [0, 1] (1 keeps theta, 0 re-initialises), got {alpha!r}"
        )
    _check_generator(generator)
    _check_optimizer(optimizer)
    patterns = [modules] if isinstance(modules, str) else modules
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, _LAYERS)]
    if patterns is not None:
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise TypeError(f"modules: expected a glob string or a list of them, got {modules!r}")
        layers = [(n, m) for n, m in layers if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if not layers:
            names = [n for n, m in model.named_modules() if isinstance(m, _LAYERS)]
            raise ValueError(f"modules: {modules!r} matches no Linear/Conv layer; layers: {names}")
    report: dict[str, int] = {}
    for name, layer in layers:
        fresh = fresh_parameters(layer, generator)
        count = 0
        for pname, new in fresh.items():
            param = getattr(layer, pname)
            param.copy_(alpha * param + (1.0 - alpha) * new)
            count += param.numel()
            if optimizer is not None:
                optimizer.state.pop(param, None)
        report[name] = count
    return report
