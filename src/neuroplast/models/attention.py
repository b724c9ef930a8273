"""A small attention-only transformer whose heads are neuron sites.

Elhage et al. 2021 ("A Mathematical Framework for Transformer Circuits") and Singh et al. 2024
("What needs to go right for an induction head?", arXiv:2404.07129): no MLPs, no LayerNorm, so the
residual stream is a sum of the embeddings and every head's output,

    x_0 = W_E[tok] + W_pos[t],    x_{l+1} = x_l + sum_h r_{l,h},
    A_{l,h} = softmax(mask((x_l W_Q^h)(x_l W_K^h)^T / sqrt(d_head))),
    z_{l,h} = A_{l,h} x_l W_V^h,   r_{l,h} = z_{l,h} W_O^h,      logits = x_L W_U.

Every layer exposes three identity :class:`HookPoint` modules, so the core ``Recorder`` / ``Clamp`` /
``Ablate`` act on heads with no model rewrite (sites from :meth:`AttentionOnlyTransformer.head_sites`):

- ``blocks.{l}.hook_pattern``: attention patterns A, shape (B, heads, T, T), head axis 1;
- ``blocks.{l}.hook_z``: per-head mixed values z, shape (B, T, heads, d_head), head axis 2;
- ``blocks.{l}.hook_result``: per-head outputs r written to the residual stream, shape
  (B, T, heads, d_model), head axis 2. Clamping a head here sets its contribution exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neuroplast.core.sites import Site

__all__ = ["HookPoint", "AttentionLayer", "AttentionOnlyTransformer", "HOOKS"]

#: hook name -> head axis of its output
HOOKS = {"pattern": 1, "z": 2, "result": 2}


class HookPoint(nn.Module):
    """Identity module: a named place whose output hooks can read or replace; ``neuron_axis`` is its head
    axis (core find_sites does not read it yet: pass ``axis=`` or use ``head_sites``)."""

    def __init__(self, neuron_axis: int) -> None:
        super().__init__()
        self.neuron_axis = neuron_axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return f"neuron_axis={self.neuron_axis}"


def _check_int(name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return value


class AttentionLayer(nn.Module):
    """One layer of causal multi-head attention with per-head weights (H, d_model, d_head)."""

    def __init__(
        self, d_model: int, n_heads: int, d_head: int, max_len: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        d, h, e = _check_int("d_model", d_model), _check_int("n_heads", n_heads), _check_int("d_head", d_head)
        _check_int("max_len", max_len)
        self.n_heads, self.d_head = h, e

        def draw(*shape: int, std: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) * std)

        self.W_Q = draw(h, d, e, std=1 / math.sqrt(d))
        self.W_K = draw(h, d, e, std=1 / math.sqrt(d))
        self.W_V = draw(h, d, e, std=1 / math.sqrt(d))
        self.W_O = draw(h, e, d, std=1 / math.sqrt(h * e))
        self.register_buffer("causal", torch.ones(max_len, max_len).tril().bool(), persistent=False)
        self.hook_pattern = HookPoint(HOOKS["pattern"])
        self.hook_z = HookPoint(HOOKS["z"])
        self.hook_result = HookPoint(HOOKS["result"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, d)
        T = x.shape[1]
        q = torch.einsum("btd,hde->bhte", x, self.W_Q)  # (B, H, T, e)
        k = torch.einsum("btd,hde->bhte", x, self.W_K)
        v = torch.einsum("btd,hde->bhte", x, self.W_V)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)  # (B, H, T, T)
        scores = scores.masked_fill(~self.causal[:T, :T], float("-inf"))
        pattern = self.hook_pattern(scores.softmax(-1))  # (B, H, T, T)
        z = self.hook_z((pattern @ v).transpose(1, 2))  # (B, T, H, e)
        result = self.hook_result(torch.einsum("bthe,hed->bthd", z, self.W_O))  # (B, T, H, d)
        return result.sum(2)


class AttentionOnlyTransformer(nn.Module):
    """Token ids (B, T) -> logits (B, T, vocab); learned positions; ``n_layers`` attention layers.

    Parameters are drawn from ``generator`` (W_E, W_pos, W_U, W_Q, W_K, W_V ~ N(0, 1/d_model),
    W_O ~ N(0, 1/(heads * d_head))), so a seed fixes the model. ``head_sites("result")`` gives one
    Site per layer with the head axis.
    """

    def __init__(
        self,
        vocab: int,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        d_head: int | None = None,
        max_len: int = 64,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_int("vocab", vocab, 2)
        _check_int("d_model", d_model)
        _check_int("n_layers", n_layers)
        _check_int("n_heads", n_heads)
        _check_int("max_len", max_len)
        if d_head is None:
            if d_model % n_heads:
                raise ValueError(
                    f"d_head: d_model={d_model} is not divisible by n_heads={n_heads}; pass d_head explicitly"
                )
            d_head = d_model // n_heads
        _check_int("d_head", d_head)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
        self.vocab, self.d_model, self.n_layers, self.n_heads, self.d_head = (
            vocab, d_model, n_layers, n_heads, d_head,
        )
        self.max_len = max_len
        std = 1 / math.sqrt(d_model)
        self.W_E = nn.Parameter(torch.randn(vocab, d_model, generator=generator) * std)
        self.W_pos = nn.Parameter(torch.randn(max_len, d_model, generator=generator) * std)
        self.blocks = nn.ModuleList(
            AttentionLayer(d_model, n_heads, d_head, max_len, generator) for _ in range(n_layers)
        )
        self.W_U = nn.Parameter(torch.randn(d_model, vocab, generator=generator) * std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype != torch.long:
            got = (
                f"{tokens.dtype} {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor) else type(tokens)
            )
            raise ValueError(f"tokens: expected an int64 tensor of shape (B, T), got {got}")
        T = tokens.shape[1]
        if not 1 <= T <= self.max_len:
            raise ValueError(f"tokens: sequence length must be in [1, max_len={self.max_len}], got {T}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab):
            raise ValueError(
                f"tokens: ids must lie in [0, vocab={self.vocab}), "
                f"got {int(tokens.min())}..{int(tokens.max())}"
            )
        x = self.W_E[tokens] + self.W_pos[:T]  # (B, T, d)
        for block in self.blocks:
            x = x + block(x)
        return x @ self.W_U  # (B, T, vocab)

    def head_sites(self, hook: str = "result", layers: list[int] | None = None) -> list[Site]:
        """Sites ``blocks.{l}.hook_{hook}`` with the head axis (``hook``: pattern, z or result)."""
        if hook not in HOOKS:
            raise ValueError(f"hook: expected one of {sorted(HOOKS)}, got {hook!r}")
        layers = list(range(self.n_layers)) if layers is None else list(layers)
        bad = [layer for layer in layers if not (isinstance(layer, int) and 0 <= layer < self.n_layers)]
        if bad:
            raise ValueError(f"layers: expected ints in [0, {self.n_layers}), got {bad}")
        return [
            Site(f"blocks.{layer}.hook_{hook}", getattr(self.blocks[layer], f"hook_{hook}"), HOOKS[hook])
            for layer in layers
        ]

    def run_with_patterns(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and every layer's attention pattern (B, heads, T, T), read through forward hooks."""
        patterns: list[torch.Tensor] = []
        handles = [
            b.hook_pattern.register_forward_hook(lambda m, a, out: patterns.append(out.detach()))
            for b in self.blocks
        ]
        try:
            logits = self(tokens)
        finally:
            for h in handles:
                h.remove()
        return logits, patterns

    def ov_circuit(self, layer: int, head: int) -> torch.Tensor:
        """The full OV circuit W_E W_V^h W_O^h W_U of one head, shape (vocab, vocab)."""
        b = self.blocks[layer]
        return self.W_E @ b.W_V[head] @ b.W_O[head] @ self.W_U
