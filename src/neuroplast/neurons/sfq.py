"""Architecture-level model of single-flux-quantum (SFQ) neuromorphic networks (Krylov, Edwards,
Friedman & Friedman, "Deep Neuromorphic Networks with Superconducting Single Flux Quanta",
arXiv:2311.10721; Edwards et al., Neuromorph. Comput. Eng. 4 014005, 2024).

Time is the SFQ clock tick; a spike is one SFQ pulse (a fluxon moving through a Josephson
junction), at most one per line and tick. Values are rate-coded: a line carries pulses with
probability ``r`` per tick (:func:`rate_encode`), read back as the pulse count over a counting
window of ``N`` ticks divided by ``N`` (:func:`rate_decode`).

Stochastic synapse: thermal noise makes the synapse's junction pass or block each incoming pulse
at random; the pass probability is set by its bias current. We model the switching curve as a
Gaussian CDF (a thermally smeared critical current; the circuit-level curve of the paper is not
reproduced, this is our choice)::

    p(I_b) = 1/2 [1 + erf((I_b - I_50) / (sqrt(2) sigma_I))]         (:func:`switching_probability`)

A connection j -> i has an excitatory and an inhibitory route (sign by routing), probabilities
``p+_ij`` and ``p-_ij``; each neuron also has bias routes fed by an always-on pulse source
(``b+_i``, ``b-_i``; "tuned by an external current"). Per tick every pulse is passed
independently::

    E_i[t] = sum_j Bernoulli(p+_ij) s_j[t] + Bernoulli(b+_i),   I_i[t] likewise with p-, b-

Neuron: a storage loop that accumulates flux (fluxons) and fires when it holds ``theta``::

    phi_i <- clip(phi_i + E_i - I_i, 0, phi_max);  o_i[t] = 1[phi_i >= theta];  phi_i <- phi_i - theta o_i

(inhibitory pulses annihilate stored fluxons, the loop cannot hold a negative flux; our reading of
"neurons integrate pulses and fire at a count threshold"). Mean-field (expected-rate) model::

    r_i = clip((sum_j (p+_ij - p-_ij) r_j + b+_i - b-_i) / theta, 0, 1)

It is the exact long-run rate when no inhibitory pulse meets an empty loop (e.g. excitatory drive
below theta per tick); otherwise the floor discards inhibition and the stochastic rate is higher
(an inactive unit fires now and then), so the mean-field margin is an upper bound in practice.

Training sets the probabilities on the mean-field model (:func:`fit_mean_field`); the stochastic
network is then deployed with the same probabilities (:meth:`SFQNetwork.forward`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "switching_probability",
    "bias_for_probability",
    "rate_encode",
    "rate_decode",
    "SFQParams",
    "SFQState",
    "check_probability",
    "bernoulli_pass",
    "sfq_neuron_step",
    "mean_field_rate",
    "SFQLayer",
    "SFQNetwork",
    "fit_mean_field",
]


def check_probability(name: str, p: Tensor | float) -> Tensor:
    """``p`` as a tensor, or ValueError naming ``name`` if any value lies outside [0, 1] or is NaN."""
    t = torch.as_tensor(p, dtype=torch.get_default_dtype()) if not isinstance(p, Tensor) else p
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    bad = ~((t >= 0) & (t <= 1))
    if bool(bad.any()):
        v = t[bad].flatten()[0].item()
        raise ValueError(
            f"{name}: expected probabilities in [0, 1], got a value {v!r} "
            f"({int(bad.sum())} of {t.numel()} outside)"
        )
    return t


def switching_probability(bias: Tensor | float, i_50: float = 1.0, sigma: float = 0.05) -> Tensor:
    """Pass probability of a stochastic SFQ synapse biased with current ``bias`` (units of ``i_50``,
    the bias that passes half the pulses; ``sigma``: thermal width): Gaussian CDF (module docstring)."""
    if not sigma > 0:
        raise ValueError(f"sigma: expected a positive thermal width, got {sigma!r}")
    b = torch.as_tensor(bias, dtype=torch.get_default_dtype())
    return 0.5 * (1.0 + torch.erf((b - i_50) / (math.sqrt(2.0) * sigma)))


def bias_for_probability(p: Tensor | float, i_50: float = 1.0, sigma: float = 0.05) -> Tensor:
    """Inverse of :func:`switching_probability`: the bias current that gives pass probability ``p``
    (``p`` in (0, 1); 0 and 1 map to -inf and +inf)."""
    if not sigma > 0:
        raise ValueError(f"sigma: expected a positive thermal width, got {sigma!r}")
    t = check_probability("p", p)
    return i_50 + math.sqrt(2.0) * sigma * torch.erfinv(2.0 * t - 1.0)


def rate_encode(
    x: Tensor, steps: int, *, mode: str = "bernoulli", generator: torch.Generator | None = None
) -> Tensor:
    """Pulse trains ``[steps, *x.shape]`` carrying rates ``x`` in [0, 1]: ``"bernoulli"`` (a pulse
    with probability x each tick) or ``"regular"`` (clocked: a pulse whenever the running sum
    ``floor((t+1) x)`` steps up, so the count over any N first ticks is ``floor(N x)``)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected a positive int number of ticks, got {steps!r}")
    x = check_probability("x", x)
    if mode == "bernoulli":
        u = torch.rand((steps, *x.shape), generator=generator, dtype=x.dtype, device=x.device)
        return (u < x).to(x.dtype)
    if mode == "regular":
        t = torch.arange(1, steps + 1, dtype=x.dtype, device=x.device).view(-1, *([1] * x.dim()))
        cum = torch.floor(t * x + 1e-9)
        return torch.diff(cum, dim=0, prepend=torch.zeros_like(cum[:1]))
    raise ValueError(f"mode: expected 'bernoulli' or 'regular', got {mode!r}")


def rate_decode(pulses: Tensor, window: int | None = None) -> Tensor:
    """Rates from pulse trains ``[T, B, N]``: the count over the first ``window`` ticks (all by
    default) divided by the window length."""
    if not isinstance(pulses, Tensor) or pulses.dim() < 2:
        raise ValueError(
            f"pulses: expected a time-first tensor [T, B, ...], got {tuple(getattr(pulses, 'shape', ()))}"
        )
    n = pulses.shape[0] if window is None else int(window)
    if not 1 <= n <= pulses.shape[0]:
        raise ValueError(f"window: expected 1 <= window <= T = {pulses.shape[0]}, got {window!r}")
    return pulses[:n].sum(0) / n


class SFQParams(NamedTuple):
    """Neuron: ``threshold`` fluxons to fire (> 0), storage capacity ``flux_max`` (None: unbounded)."""

    threshold: float = 2.0
    flux_max: float | None = None


_DEFAULT_SFQ = SFQParams()


class SFQState(NamedTuple):
    """Stored flux (fluxons) per neuron, (B, N)."""

    flux: Tensor


def bernoulli_pass(pulses: Tensor, p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Number of pulses passed this tick by Bernoulli synapses: ``pulses`` (B, n_in) in {0, 1}, ``p``
    (n_out, n_in) in [0, 1] -> (B, n_out) with entries ``sum_j Bernoulli(p_ij) pulses_j``."""
    if p.dim() != 2 or pulses.dim() != 2 or pulses.shape[1] != p.shape[1]:
        raise ValueError(
            f"pulses: expected (B, {p.shape[-1]}) for p of shape {tuple(p.shape)}, got {tuple(pulses.shape)}"
        )
    u = torch.rand(pulses.shape[0], *p.shape, generator=generator, dtype=p.dtype, device=p.device)
    return ((u < p).to(p.dtype) * pulses.unsqueeze(1).to(p.dtype)).sum(-1)


def sfq_neuron_step(
    exc: Tensor, inh: Tensor, state: SFQState | None, params: SFQParams = _DEFAULT_SFQ
) -> tuple[Tensor, SFQState]:
    """One tick of the flux-counting neuron (module docstring): ``exc``/``inh`` pulse counts (B, N)
    -> ``(pulses (B, N), new_state)``."""
    if not params.threshold > 0:
        raise ValueError(f"threshold: expected a positive number of fluxons, got {params.threshold!r}")
    if exc.shape != inh.shape:
        raise ValueError(f"inh: expected the shape of exc {tuple(exc.shape)}, got {tuple(inh.shape)}")
    if state is None:
        flux = torch.zeros_like(exc)
    else:
        flux = state.flux
        if flux.shape != exc.shape:
            raise ValueError(
                f"state: expected flux of shape {tuple(exc.shape)} (one tick of input), got "
                f"{tuple(flux.shape)}; start from state=None when the batch size changes"
            )
    flux = (flux + exc - inh).clamp(0.0, params.flux_max)
    fire = (flux >= params.threshold).to(flux.dtype)
    return fire, SFQState(flux - params.threshold * fire)


def mean_field_rate(
    exc_rate: Tensor, inh_rate: Tensor, threshold: float, smooth: float | None = None
) -> Tensor:
    """Expected output rate ``clip((exc - inh) / threshold, 0, 1)``; with ``smooth = k`` the clip is
    replaced by ``(softplus(k z) - softplus(k (z - 1))) / k`` (for training)."""
    z = (exc_rate - inh_rate) / threshold
    if smooth is None:
        return z.clamp(0.0, 1.0)
    return (nn.functional.softplus(smooth * z) - nn.functional.softplus(smooth * (z - 1.0))) / smooth


class SFQLayer(nn.Module):
    """Bernoulli-synapse layer feeding flux-counting neurons (module docstring).

    Probabilities are ``sigmoid`` of the parameters ``logit_exc``/``logit_inh`` (n_out, n_in) and
    ``bias_logit_exc``/``bias_logit_inh`` (n_out,); :meth:`set_probabilities` writes them from
    values in [0, 1] (ValueError otherwise). ``bias=False``: no bias routes.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        threshold: float = 2.0,
        flux_max: float | None = None,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        self.n_in, self.n_out, self.has_bias = n_in, n_out, bool(bias)
        self.params = SFQParams(float(threshold), None if flux_max is None else float(flux_max))
        if not self.params.threshold > 0:
            raise ValueError(f"threshold: expected a positive number of fluxons, got {threshold!r}")
        self.logit_exc = nn.Parameter(torch.randn(n_out, n_in, generator=generator))
        self.logit_inh = nn.Parameter(torch.randn(n_out, n_in, generator=generator))
        self.bias_logit_exc = nn.Parameter(
            torch.randn(n_out, generator=generator) if bias else torch.full((n_out,), -30.0),
            requires_grad=bias,
        )
        self.bias_logit_inh = nn.Parameter(
            torch.randn(n_out, generator=generator) if bias else torch.full((n_out,), -30.0),
            requires_grad=bias,
        )

    def probabilities(self) -> dict[str, Tensor]:
        """``{"exc", "inh", "bias_exc", "bias_inh"}`` pass probabilities."""
        p = {
            "exc": torch.sigmoid(self.logit_exc),
            "inh": torch.sigmoid(self.logit_inh),
            "bias_exc": torch.sigmoid(self.bias_logit_exc),
            "bias_inh": torch.sigmoid(self.bias_logit_inh),
        }
        if not self.has_bias:
            p["bias_exc"] = torch.zeros_like(p["bias_exc"])
            p["bias_inh"] = torch.zeros_like(p["bias_inh"])
        return p

    @torch.no_grad()
    def set_probabilities(
        self,
        exc: Tensor | None = None,
        inh: Tensor | None = None,
        bias_exc: Tensor | None = None,
        bias_inh: Tensor | None = None,
    ) -> None:
        """Set pass probabilities (values in [0, 1]; 0 and 1 are stored as logits -/+ 30)."""
        for name, val, par, shape in (
            ("exc", exc, self.logit_exc, (self.n_out, self.n_in)),
            ("inh", inh, self.logit_inh, (self.n_out, self.n_in)),
            ("bias_exc", bias_exc, self.bias_logit_exc, (self.n_out,)),
            ("bias_inh", bias_inh, self.bias_logit_inh, (self.n_out,)),
        ):
            if val is None:
                continue
            t = check_probability(name, val).to(par.dtype)
            if tuple(t.shape) != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {tuple(t.shape)}")
            par.copy_(torch.logit(t.clamp(1e-13, 1 - 1e-13)).clamp(-30.0, 30.0))

    def bias_currents(self, i_50: float = 1.0, sigma: float = 0.05) -> dict[str, Tensor]:
        """The synapse bias currents that realise the current probabilities
        (:func:`bias_for_probability`)."""
        return {
            k: bias_for_probability(v.detach().clamp(1e-12, 1 - 1e-12), i_50, sigma)
            for k, v in self.probabilities().items()
        }

    def mean_field(self, rates: Tensor, smooth: float | None = None) -> Tensor:
        """Expected output rates (B, n_out) for input rates (B, n_in) (differentiable)."""
        if rates.dim() != 2 or rates.shape[1] != self.n_in:
            raise ValueError(f"rates: expected (B, {self.n_in}), got {tuple(rates.shape)}")
        p = self.probabilities()
        exc = rates @ p["exc"].T + p["bias_exc"]
        inh = rates @ p["inh"].T + p["bias_inh"]
        return mean_field_rate(exc, inh, self.params.threshold, smooth)

    def step(
        self,
        pulses: Tensor,
        state: SFQState | None,
        p: dict[str, Tensor],
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, SFQState]:
        """One stochastic tick: pulses (B, n_in) -> (pulses (B, n_out), state)."""
        B = pulses.shape[0]
        ones = torch.ones(B, 1, dtype=pulses.dtype, device=pulses.device)
        exc = bernoulli_pass(pulses, p["exc"], generator)
        inh = bernoulli_pass(pulses, p["inh"], generator)
        if self.has_bias:
            exc = exc + bernoulli_pass(ones, p["bias_exc"].unsqueeze(1), generator)
            inh = inh + bernoulli_pass(ones, p["bias_inh"].unsqueeze(1), generator)
        return sfq_neuron_step(exc, inh, state, self.params)

    @torch.no_grad()
    def forward(self, pulses: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Stochastic pulse trains [T, B, n_out] from input pulse trains [T, B, n_in] (time first)."""
        _check_train(pulses, self.n_in)
        p = {k: v.detach() for k, v in self.probabilities().items()}
        state: SFQState | None = None
        out = []
        for t in range(pulses.shape[0]):
            o, state = self.step(pulses[t], state, p, generator)
            out.append(o)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return (
            f"n_in={self.n_in}, n_out={self.n_out}, threshold={self.params.threshold:g}, bias={self.has_bias}"
        )


def _check_train(pulses: Tensor, n_in: int) -> None:
    if not isinstance(pulses, Tensor):
        raise TypeError(f"pulses: expected a tensor [T, B, {n_in}], got {type(pulses).__name__}")
    if pulses.dim() != 3 or pulses.shape[-1] != n_in:
        hint = (
            " (time first: [T, B, N]; a [B, N] input is one tick, add a time axis)"
            if pulses.dim() == 2
            else " (time first: [T, B, N])"
        )
        raise ValueError(
            f"pulses: expected pulse trains of shape [T, B, {n_in}]{hint}, got {tuple(pulses.shape)}"
        )
    bad = ~((pulses == 0) | (pulses == 1))
    if bool(bad.any()):
        raise ValueError("pulses: expected 0/1 pulses (at most one SFQ pulse per line and tick)")


class SFQNetwork(nn.Module):
    """A feed-forward stack of :class:`SFQLayer` (e.g. ``SFQNetwork([2, 4, 1])``), deployed
    stochastically (:meth:`forward`, pulse trains) or as its mean-field model (:meth:`mean_field`)."""

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        threshold: float | Sequence[float] = 2.0,
        flux_max: float | None = None,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes: expected at least [n_in, n_out], got {sizes!r}")
        th = [threshold] * (len(sizes) - 1) if isinstance(threshold, (int, float)) else list(threshold)
        if len(th) != len(sizes) - 1:
            raise ValueError(
                f"threshold: expected one value or {len(sizes) - 1} (one per layer), got {len(th)}"
            )
        self.sizes = sizes
        self.layers = nn.ModuleList(
            SFQLayer(a, b, threshold=t, flux_max=flux_max, bias=bias, generator=generator)
            for a, b, t in zip(sizes[:-1], sizes[1:], th, strict=True)
        )

    def mean_field(self, rates: Tensor, smooth: float | None = None) -> Tensor:
        """Expected rates (B, n_out) for input rates (B, n_in)."""
        for layer in self.layers:
            rates = layer.mean_field(rates, smooth)
        return rates

    @torch.no_grad()
    def forward(self, pulses: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Stochastic output pulse trains [T, B, n_out] for input pulses [T, B, n_in]; a pulse passes
        through all layers within its tick."""
        _check_train(pulses, self.sizes[0])
        probs = [{k: v.detach() for k, v in layer.probabilities().items()} for layer in self.layers]
        states: list[SFQState | None] = [None] * len(self.layers)
        out = []
        for t in range(pulses.shape[0]):
            x = pulses[t]
            for i, layer in enumerate(self.layers):
                x, states[i] = layer.step(x, states[i], probs[i], generator)
            out.append(x)
        return torch.stack(out)


def fit_mean_field(
    net: SFQNetwork,
    inputs: Tensor,
    targets: Tensor,
    *,
    steps: int = 2000,
    lr: float = 0.05,
    smooth: float | None = 20.0,
    betas: tuple[float, float] = (0.9, 0.999),
) -> list[float]:
    """Train the pass probabilities (their logits) of ``net`` on its mean-field model: minimise
    ``mean((r(inputs) - targets)^2)`` with Adam for ``steps`` steps (deterministic). ``inputs``
    (B, n_in) and ``targets`` (B, n_out) are rates in [0, 1]. Returns the loss curve."""
    check_probability("inputs", inputs)
    check_probability("targets", targets)
    params = [p for p in net.parameters() if p.requires_grad]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    losses = []
    for k in range(1, steps + 1):
        loss = ((net.mean_field(inputs, smooth) - targets) ** 2).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, mi, vi in zip(params, grads, m, v, strict=True):
                mi.mul_(betas[0]).add_(g, alpha=1 - betas[0])
                vi.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
                mhat = mi / (1 - betas[0] ** k)
                vhat = vi / (1 - betas[1] ** k)
                p.sub_(lr * mhat / (vhat.sqrt() + 1e-8))
        losses.append(float(loss.detach()))
    return losses
