"""Small models whose parts are neuron sites: an attention-only transformer with per-head hook points
(arXiv:2404.07129) and the induction-head tools that go with it."""

from neuroplast.models.attention import HOOKS, AttentionLayer, AttentionOnlyTransformer, HookPoint
from neuroplast.models.induction import (
    ClampToSource,
    copying_score,
    icl_mask,
    prefix_matching_score,
    previous_token_score,
    repeated_sequences,
    steepest_change,
)

__all__ = [
    "HOOKS",
    "AttentionLayer",
    "AttentionOnlyTransformer",
    "HookPoint",
    "ClampToSource",
    "copying_score",
    "icl_mask",
    "prefix_matching_score",
    "previous_token_score",
    "repeated_sequences",
    "steepest_change",
]
