"""Perforated backpropagation: dendrite nodes on the neurons of Linear and Conv2d sites.

Brenner & Itti 2025, "Perforated Backpropagation: A Neuroscience Inspired Extension to Artificial
Neural Networks" (arXiv:2501.18018). A neuron j of a site (a Linear output unit, or a Conv2d
channel) gets dendrite nodes that see the same input x as the neuron:

    d_jk(x) = tanh(U_jk x + c_jk),        z_j'(x) = W_j x + b_j + sum_k v_jk * sg[d_jk(x)]

where ``sg`` stops the gradient (the "perforation": no error flows back through a dendrite into the
layers below it), and v_jk is learned with the neurons. Training cycles between two phases:

1. neuron phase: the model's parameters and every v train on the task loss;
2. dendrite phase: K new candidate dendrites per neuron are added (v = 0, so the function is
   unchanged), every other parameter is frozen, and the candidates train to maximise the
   cascade-correlation score (Fahlman & Lebiere 1990) with the neuron's remaining error
   e_pj = dL/dz_j at sample (and position) p:

       S_j = sum_k | (1/P) sum_p (d_pjk - mean_p d_jk)(e_pj - mean_p e_j) |,

   whose gradient is dS/dd_pjk = sign(C_jk) (e_pj - mean e_j) / P (objective ``"correlation"``);
   or, with objective ``"gradient"``, the candidates and their v train on the task loss itself (what
   the vendor package falls back to without its closed correlation rule).

Then the candidates are frozen and the next neuron phase starts. :class:`PerforatedBackprop` attaches
to an unchanged model through forward hooks on the sites, decides the phase from validation scores
(``step(val_score)`` returns True when the trainable set changed, so the caller rebuilds its
optimizer over :meth:`PerforatedBackprop.parameters`), and ``detach()`` restores the model
bit-identically. It owns no optimizer, no loop and no global state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Self

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.hooks import RemovableHandle

from neuroplast.core.sites import Site, resolve_sites

__all__ = ["PerforatedBackprop", "cascade_correlation", "SUPPORTED_MODULES", "OBJECTIVES", "PHASES"]

SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d)
OBJECTIVES = ("correlation", "gradient")
PHASES = ("neuron", "dendrite", "done")


def cascade_correlation(d: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Cascade-correlation score of candidate units (Fahlman & Lebiere 1990; arXiv:2501.18018).

    ``d``: (P, K) candidate outputs over P patterns; ``e``: (P, O) residual errors of O outputs.
    Returns (K,): S_k = sum_o | sum_p (d_pk - mean d_k)(e_po - mean e_o) |.
    """
    if not isinstance(d, torch.Tensor) or not isinstance(e, torch.Tensor):
        raise TypeError(f"cascade_correlation: d and e must be tensors, got {type(d).__name__}, "
                        f"{type(e).__name__}")
    if d.dim() != 2 or e.dim() != 2 or d.shape[0] != e.shape[0]:
        raise ValueError(f"cascade_correlation: expected d (P, K) and e (P, O) with the same P, got "
                         f"{tuple(d.shape)} and {tuple(e.shape)}")
    dc = d - d.mean(0)
    ec = e - e.mean(0)
    return (dc.transpose(0, 1) @ ec).abs().sum(1)  # (K,)


# -- helpers ---------------------------------------------------------------------------------------
def _natural_axis(module: nn.Module) -> int:
    return -1 if isinstance(module, nn.Linear) else 1


def _neurons(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _to_pnk(d: torch.Tensor, linear: bool) -> torch.Tensor:
    """Dendrite outputs (..., N, K) or (B, N, K, H, W) / (N, K, H, W) -> (P, N, K)."""
    if linear:
        return d.reshape(-1, d.shape[-2], d.shape[-1])
    n, k = d.shape[-4], d.shape[-3]
    return d.movedim(-4, -1).movedim(-4, -1).reshape(-1, n, k)  # (..., H, W, N, K)


def _to_pn(e: torch.Tensor, linear: bool) -> torch.Tensor:
    """Neuron tensor (..., N) or (B, N, H, W) / (N, H, W) -> (P, N)."""
    if linear:
        return e.reshape(-1, e.shape[-1])
    return e.movedim(-3, -1).reshape(-1, e.shape[-3])


class _CorrelationTap(torch.autograd.Function):
    """Identity on the neuron output z; in backward, the candidate outputs d get the gradient of
    -S/P (the negative mean-normalised cascade-correlation score) against the error e = dL/dz."""

    @staticmethod
    def forward(
        ctx: Any, z: torch.Tensor, d: torch.Tensor, linear: bool, sink: dict, key: str
    ) -> torch.Tensor:
        ctx.save_for_backward(d)
        ctx.linear, ctx.sink, ctx.key = linear, sink, key
        return z.clone()

    @staticmethod
    def backward(ctx: Any, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None, None]:
        (d,) = ctx.saved_tensors
        dp = _to_pnk(d, ctx.linear)  # (P, N, K)
        ep = _to_pn(e, ctx.linear)  # (P, N)
        p = ep.shape[0]
        ec = ep - ep.mean(0)
        cov = torch.einsum("pn,pnk->nk", ec, dp - dp.mean(0)) / p  # (N, K)
        ctx.sink[ctx.key] = cov.detach().abs().sum()
        grad = -(cov.sign().unsqueeze(0) * ec.unsqueeze(-1)) / p  # (P, N, K)
        if ctx.linear:
            grad_d = grad.reshape(d.shape)
        else:
            lead = d.shape[:-4] + d.shape[-2:]  # (B, H, W) or (H, W)
            grad_d = grad.reshape(*lead, d.shape[-4], d.shape[-3]).movedim((-2, -1), (-4, -3))
        return e, grad_d, None, None, None


class _Generation(nn.Module):
    """K dendrites on each of N neurons of one site, added in one cycle."""

    def __init__(self, site: nn.Module, k: int, generator: torch.Generator) -> None:
        super().__init__()
        w = site.weight
        n = _neurons(site)
        shape = (n * k, *w.shape[1:])  # the site's weight with N*K output units
        fan_in = math.prod(w.shape[1:])
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = nn.Parameter(
            ((torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound).to(w)
        )
        self.bias = nn.Parameter(
            ((torch.rand(n * k, generator=generator, dtype=torch.float64) * 2 - 1) * bound).to(w)
        )
        self.v = nn.Parameter(torch.zeros(n, k, dtype=w.dtype, device=w.device))  # v = 0: f unchanged
        self.linear = isinstance(site, nn.Linear)
        self.n, self.k = n, k

    def dendrites(self, site: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """d = tanh(U x + c): (..., N, K) for Linear, (B, N, K, H, W) for Conv2d."""
        if self.linear:
            return torch.tanh(F.linear(x, self.weight, self.bias)).unflatten(-1, (self.n, self.k))
        return torch.tanh(site._conv_forward(x, self.weight, self.bias)).unflatten(-3, (self.n, self.k))

    def combine(self, d: torch.Tensor) -> torch.Tensor:
        """sum_k v_jk d_jk: (..., N) or (B, N, H, W)."""
        if self.linear:
            return (d * self.v).sum(-1)
        return (d * self.v[:, :, None, None]).sum(-3)


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value}")
    return value


class PerforatedBackprop:
    """Dendrite nodes on chosen sites and the phase controller of perforated backpropagation.

    Args:
        model: the user's model (left unchanged; hooks are added by :meth:`attach`).
        sites: Site(s) or name patterns; every site must be an ``nn.Linear`` or ``nn.Conv2d``
            (neurons: output features / channels).
        num_dendrites: K, dendrites added per neuron and cycle (>= 1).
        objective: ``"correlation"`` (cascade-correlation with the neuron's error) or
            ``"gradient"`` (task-loss gradient descent on the candidates and their v).
        patience: neuron-phase epochs without an improvement of more than ``min_delta`` that end it.
        min_delta: improvement threshold (>= 0) on the validation score.
        dendrite_epochs: epochs (``step`` calls) of each dendrite phase.
        max_cycles: dendrite cycles at most (>= 0); then the phase is ``"done"``.
        max_neuron_epochs: optional cap on the length of a neuron phase.
        mode: ``"max"`` (accuracy) or ``"min"`` (loss) for the validation score.
        generator: seeds the candidate dendrites' initial weights (default: seed 0).

    ``step(val_score)`` once per epoch: in a neuron phase that plateaus, if the last cycle improved the
    best score by more than ``min_delta`` (always true for the first), new candidates are added and the
    dendrite phase starts; after ``dendrite_epochs`` the candidates are frozen and a neuron phase
    starts. It returns True when the set of :meth:`parameters` changed. When a cycle brings no
    improvement, or ``max_cycles`` is reached, the phase becomes ``"done"`` (a neuron phase that never
    ends). During a dendrite phase the model's parameters are frozen (``requires_grad=False``; their
    flags are restored after it and by :meth:`detach`).
    """

    def __init__(
        self,
        model: nn.Module,
        sites: Site | str | Sequence[Site | str],
        num_dendrites: int = 1,
        objective: str = "correlation",
        patience: int = 3,
        min_delta: float = 0.0,
        dendrite_epochs: int = 3,
        max_cycles: int = 3,
        max_neuron_epochs: int | None = None,
        mode: str = "max",
        generator: torch.Generator | None = None,
    ) -> None:
        self.model = model
        self.sites = sites
        self.num_dendrites = num_dendrites
        self.objective = objective
        self.patience = patience
        self.min_delta = min_delta
        self.dendrite_epochs = dendrite_epochs
        self.max_cycles = max_cycles
        self.max_neuron_epochs = max_neuron_epochs
        self.mode = mode
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.sites_: list[Site] | None = None
        self.banks_: dict[str, list[_Generation]] = {}
        self.phase_ = "neuron"
        self.cycle_ = 0  # dendrite generations added so far
        self.epoch_ = 0  # step() calls
        self.phase_epochs_ = 0
        self.bad_epochs_ = 0
        self.best_: float | None = None  # best score of the current neuron phase
        self.prev_best_: float | None = None  # best score before the current cycle's dendrites
        self.scores_: dict[str, torch.Tensor] = {}  # last batch's S per site (correlation objective)
        self._handles: list[RemovableHandle] = []
        self._frozen: list[nn.Parameter] = []

    # -- validation and sites ---------------------------------------------------------------------
    def _validate(self) -> list[Site]:
        if not isinstance(self.model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(self.model).__name__}")
        _check_int("num_dendrites", self.num_dendrites, 1)
        _check_int("patience", self.patience, 1)
        _check_int("dendrite_epochs", self.dendrite_epochs, 1)
        _check_int("max_cycles", self.max_cycles, 0)
        if self.max_neuron_epochs is not None:
            _check_int("max_neuron_epochs", self.max_neuron_epochs, 1)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {self.objective!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode: expected 'max' or 'min', got {self.mode!r}")
        md = self.min_delta
        if isinstance(md, bool) or not isinstance(md, int | float) or not math.isfinite(md) or md < 0:
            raise ValueError(f"min_delta: expected a finite number >= 0, got {md!r}")
        if not isinstance(self.generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator, got {type(self.generator).__name__}")
        sites = resolve_sites(self.model, self.sites)
        supported = ", ".join(t.__name__ for t in SUPPORTED_MODULES)
        for s in sites:
            m = s.module
            if not isinstance(m, SUPPORTED_MODULES):
                raise TypeError(
                    f"sites: site {s.name!r} is a {type(m).__name__}; perforated dendrites support "
                    f"{supported} (put the site on the layer, not on its activation)"
                )
            if isinstance(m, nn.modules.lazy.LazyModuleMixin) and m.has_uninitialized_params():
                raise ValueError(f"sites: site {s.name!r} is an uninitialised lazy module; run one "
                                 f"forward pass before attaching dendrites")
            nat = _natural_axis(m)
            ax = s.axis
            if ax != nat and not (isinstance(m, nn.Conv2d) and ax == -3):
                raise ValueError(
                    f"sites: site {s.name!r} ({type(m).__name__}) has neuron axis {ax}; dendrites "
                    f"act on the {'features (axis -1)' if nat == -1 else 'channels (axis 1)'}"
                )
        return sites

    def _resolve(self) -> list[Site]:
        if self.sites_ is None:
            sites = self._validate()
            self.sites_ = sites
            self.banks_ = {s.name: [] for s in sites}
        return self.sites_

    # -- attach / detach --------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self) -> Self:
        """Validate everything, then hook every site (idempotent). On error the model is unchanged."""
        if self.attached:
            return self
        self._validate()  # hyperparameters may have been edited since the sites were resolved
        sites = self._resolve()
        handles = []
        try:
            for s in sites:
                handles.append(s.module.register_forward_hook(self._make_hook(s)))
        except Exception:
            for h in handles:
                h.remove()
            raise
        self._handles = handles
        self._apply_flags()
        return self

    def detach(self) -> None:
        """Remove the hooks and restore the model's requires_grad flags (dendrites are kept)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._restore_flags()

    remove = detach

    def __enter__(self) -> Self:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # -- forward ----------------------------------------------------------------------------------
    def _make_hook(self, site: Site) -> Any:
        name = site.name

        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
            gens = self.banks_.get(name, [])
            if not gens:
                return out
            x = args[0]
            candidate = gens[-1] if self.phase_ == "dendrite" else None
            for g in gens:
                if g is candidate:
                    continue
                with torch.no_grad():  # the perforation: no gradient through a frozen dendrite
                    d = g.dendrites(module, x)
                out = out + g.combine(d)
            if candidate is None or (self.objective == "correlation" and not torch.is_grad_enabled()):
                return out  # an unconnected correlation candidate does not change the output
            d = candidate.dendrites(module, x.detach())
            if self.objective == "gradient":
                return out + candidate.combine(d)
            return _CorrelationTap.apply(out, d, candidate.linear, self.scores_, name)

        return hook

    # -- trainable sets -----------------------------------------------------------------------------
    def _model_params(self) -> list[nn.Parameter]:
        frozen = {id(p) for p in self._frozen}
        return [p for p in self.model.parameters() if p.requires_grad or id(p) in frozen]

    def _apply_flags(self) -> None:
        """Set requires_grad for the current phase (model params frozen in a dendrite phase)."""
        cand = None
        if self.phase_ == "dendrite":
            cand = {id(g) for gens in self.banks_.values() for g in gens[-1:]}
        for gens in self.banks_.values():
            for g in gens:
                is_cand = cand is not None and id(g) in cand
                g.weight.requires_grad_(is_cand)
                g.bias.requires_grad_(is_cand)
                g.v.requires_grad_(cand is None or (is_cand and self.objective == "gradient"))
        if not self.attached:
            return
        if self.phase_ == "dendrite":
            if not self._frozen:
                self._frozen = [p for p in self.model.parameters() if p.requires_grad]
                for p in self._frozen:
                    p.requires_grad_(False)
        else:
            self._restore_flags()

    def _restore_flags(self) -> None:
        for p in self._frozen:
            p.requires_grad_(True)
        self._frozen = []

    def dendrite_parameters(self) -> Iterator[nn.Parameter]:
        """Every dendrite parameter (weights, biases and v of all generations)."""
        for gens in self.banks_.values():
            for g in gens:
                yield from g.parameters()

    def parameters(self) -> list[nn.Parameter]:
        """The parameters to optimise in the current phase: the model's (trainable) parameters and
        every v in a neuron phase; the candidate dendrites (and their v with ``"gradient"``) in a
        dendrite phase. Rebuild the optimizer over these whenever :meth:`step` returns True."""
        if self.phase_ == "dendrite":
            out: list[nn.Parameter] = []
            for gens in self.banks_.values():
                g = gens[-1]
                out += [g.weight, g.bias] + ([g.v] if self.objective == "gradient" else [])
            return out
        return self._model_params() + [g.v for gens in self.banks_.values() for g in gens]

    def num_dendrite_parameters(self) -> int:
        return sum(p.numel() for p in self.dendrite_parameters())

    # -- phases -----------------------------------------------------------------------------------
    @property
    def phase(self) -> str:
        return self.phase_

    def add_dendrites(self) -> None:
        """Add K candidate dendrites per neuron on every site and start a dendrite phase."""
        if self.phase_ == "dendrite":
            raise RuntimeError("add_dendrites: a dendrite phase is already running; call "
                               "freeze_dendrites() first")
        sites = self._resolve()
        for s in sites:
            self.banks_[s.name].append(_Generation(s.module, self.num_dendrites, self.generator))
        self.cycle_ += 1
        self._enter("dendrite")

    def freeze_dendrites(self) -> None:
        """Freeze the candidates and start a neuron phase."""
        if self.phase_ != "dendrite":
            raise RuntimeError(f"freeze_dendrites: no dendrite phase is running (phase {self.phase_!r})")
        self._enter("neuron")

    def _enter(self, phase: str) -> None:
        self.phase_ = phase
        self.phase_epochs_ = 0
        self.bad_epochs_ = 0
        if phase == "neuron":
            self.best_ = None
        for p in self.dendrite_parameters():
            p.grad = None
        self._apply_flags()

    def _better(self, a: float, b: float | None) -> bool:
        if b is None:
            return True
        return a > b + self.min_delta if self.mode == "max" else a < b - self.min_delta

    def step(self, val_score: float) -> bool:
        """Advance the controller by one epoch with its validation score; True if the trainable
        parameter set changed (rebuild the optimizer over :meth:`parameters`)."""
        if isinstance(val_score, torch.Tensor) and val_score.numel() == 1:
            val_score = float(val_score)
        if isinstance(val_score, bool) or not isinstance(val_score, int | float) or not math.isfinite(
            val_score
        ):
            raise ValueError(f"val_score: expected a finite number, got {val_score!r}")
        self._resolve()
        self.epoch_ += 1
        self.phase_epochs_ += 1
        if self.phase_ == "dendrite":
            if self.phase_epochs_ >= self.dendrite_epochs:
                self.freeze_dendrites()
                return True
            return False
        if self._better(val_score, self.best_):
            self.best_ = float(val_score)
            self.bad_epochs_ = 0
        else:
            self.bad_epochs_ += 1
        if self.phase_ == "done":
            return False
        capped = self.max_neuron_epochs is not None and self.phase_epochs_ >= self.max_neuron_epochs
        if self.bad_epochs_ < self.patience and not capped:
            return False
        # the neuron phase has plateaued
        if self.cycle_ > 0 and not self._better(self.best_, self.prev_best_):
            self.phase_ = "done"  # the last dendrites did not help
            return False
        self.prev_best_ = self.best_
        if self.cycle_ >= self.max_cycles:
            self.phase_ = "done"
            return False
        self.add_dendrites()
        return True

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Phase counters, scores, the generator state and every dendrite tensor (by site and cycle)."""
        self._resolve()
        params = {}
        for name, gens in self.banks_.items():
            for i, g in enumerate(gens):
                for pname, p in g.named_parameters():
                    params[f"{name}/{i}/{pname}"] = p.detach().clone()
        return {
            "phase": self.phase_,
            "cycle": self.cycle_,
            "epoch": self.epoch_,
            "phase_epochs": self.phase_epochs_,
            "bad_epochs": self.bad_epochs_,
            "best": self.best_,
            "prev_best": self.prev_best_,
            "generations": {name: len(gens) for name, gens in self.banks_.items()},
            "generator": self.generator.get_state(),
            "params": params,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rebuild the dendrite generations of ``state`` and load their tensors and counters."""
        sites = {s.name: s for s in self._resolve()}
        gens_n = dict(state["generations"])
        if set(gens_n) != set(sites):
            raise ValueError(f"load_state_dict: state has dendrites on sites {sorted(gens_n)}, this object "
                             f"on {sorted(sites)}")
        if state["phase"] not in PHASES:
            raise ValueError(f"load_state_dict: phase must be one of {PHASES}, got {state['phase']!r}")
        scratch = torch.Generator()
        banks: dict[str, list[_Generation]] = {}
        for name, s in sites.items():
            banks[name] = []
            for i in range(int(gens_n[name])):
                g = _Generation(s.module, self.num_dendrites, scratch)
                with torch.no_grad():
                    for pname, p in g.named_parameters():
                        src = state["params"][f"{name}/{i}/{pname}"]
                        if src.shape != p.shape:
                            raise ValueError(f"load_state_dict: {name}/{i}/{pname} has shape "
                                             f"{tuple(src.shape)}, expected {tuple(p.shape)}")
                        p.copy_(src)
                banks[name].append(g)
        self.banks_ = banks
        self.phase_ = state["phase"]
        self.cycle_ = int(state["cycle"])
        self.epoch_ = int(state["epoch"])
        self.phase_epochs_ = int(state["phase_epochs"])
        self.bad_epochs_ = int(state["bad_epochs"])
        self.best_ = None if state["best"] is None else float(state["best"])
        self.prev_best_ = None if state["prev_best"] is None else float(state["prev_best"])
        self.generator.set_state(state["generator"])
        if self.phase_ != "dendrite":
            self._restore_flags()
        self._apply_flags()

    def __repr__(self) -> str:
        names = [s.name for s in self.sites_] if self.sites_ is not None else self.sites
        return (f"PerforatedBackprop(sites={names!r}, K={self.num_dendrites}, objective={self.objective!r}, "
                f"phase={self.phase_!r}, cycle={self.cycle_})")
