"""Conformance cases for neuroplast.models: the attention-only transformer (a module) and
ClampToSource (a clamp of chosen heads to another model's head outputs)."""

from __future__ import annotations

import torch
from torch import nn

from neuroplast.models import AttentionOnlyTransformer, ClampToSource
from neuroplast.testing import ConformanceCase


def _transformer(seed: int = 0) -> AttentionOnlyTransformer:
    return AttentionOnlyTransformer(
        vocab=10, d_model=8, n_layers=2, n_heads=2, max_len=6, generator=torch.Generator().manual_seed(seed)
    )


def _tokens() -> torch.Tensor:
    return torch.randint(0, 10, (3, 6), generator=torch.Generator().manual_seed(5))


def _train(model: nn.Module) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(_tokens()).pow(2).mean().backward()
    opt.step()


def _clamp_to_init(model: AttentionOnlyTransformer) -> ClampToSource:
    source = _transformer(seed=1).eval()
    return ClampToSource(model, model.head_sites("result", [0])[0], [1], source=source)


CASES = [
    ConformanceCase("attention_only_transformer", _transformer, input_factory=_tokens, exercise=_train),
    ConformanceCase(
        "clamp_to_source",
        _transformer,
        method_factory=_clamp_to_init,
        input_factory=_tokens,
        exercise=lambda c: c.step(),
    ),
]
