"""Associative and content-addressable memories made of model neurons.

- :mod:`neuroplast.memory.hippocampus`: a CA3-inspired spiking content-addressable memory with cue
  and content populations of current-based IF neurons, one-shot STDP learning, recall from a cue or
  a content fragment, and forgetting when a cue is re-learned (arXiv:2310.05868); plus the Hebbian
  Hopfield net used as its baseline.
"""

from neuroplast.memory.hippocampus import (
    CAMTrace,
    HippocampalCAM,
    IFCurrExpParams,
    IFCurrExpState,
    hopfield_recall,
    hopfield_weights,
    if_curr_exp_step,
)

__all__ = [
    "CAMTrace",
    "HippocampalCAM",
    "IFCurrExpParams",
    "IFCurrExpState",
    "hopfield_recall",
    "hopfield_weights",
    "if_curr_exp_step",
]
