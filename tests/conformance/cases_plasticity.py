"""Conformance cases for the STDP / homeostasis objects and the modules built on them: the
hippocampal CAM (one-shot STDP memory) and the SFQ networks (stochastic-synapse neurons)."""

from __future__ import annotations

import torch

from neuroplast.memory import HippocampalCAM
from neuroplast.neurons.sfq import SFQLayer, SFQNetwork, rate_encode
from neuroplast.plasticity.stdp import STDP, AdaptiveThreshold
from neuroplast.testing import ConformanceCase

_NO_FORWARD = ("determinism", "dtype")  # rule objects with an explicit step(), no forward()


def _stdp_exercise(stdp: STDP) -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.full((3, 4), 0.5)
    for _ in range(5):
        stdp.step(
            w, (torch.rand(2, 4, generator=g) < 0.5).float(), (torch.rand(2, 3, generator=g) < 0.5).float()
        )


def _threshold_exercise(th: AdaptiveThreshold) -> None:
    for t in range(4):
        th.step(torch.tensor([float(t % 2), 1.0, 0.0]))


def _cam_exercise(cam: HippocampalCAM) -> None:
    cam.learn(1, torch.tensor([1.0, 0, 1, 0, 0, 1, 0, 0]))


def _cam_input() -> tuple[torch.Tensor, torch.Tensor]:
    cue = torch.zeros(4, 2, 4)
    cue[0, 0, 1] = 1.0  # sample 0: recall from cue 1
    content = torch.zeros(4, 2, 8)
    content[0, 1, 0] = 1.0  # sample 1: recall from a one-bit fragment
    return cue, content


def _cam_model() -> HippocampalCAM:
    cam = HippocampalCAM(4, 8)
    _cam_exercise(cam)
    return cam


def _sfq_input() -> torch.Tensor:
    return rate_encode(torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.5, 0.25]]), 16, mode="regular")


def _set_probs(layer: SFQLayer) -> None:
    layer.set_probabilities(
        exc=torch.full((layer.n_out, layer.n_in), 0.7), bias_inh=torch.full((layer.n_out,), 0.1)
    )


CASES = [
    ConformanceCase(
        "stdp_additive",
        lambda: STDP(4, 3, a_plus=0.1, a_minus=0.12),
        exercise=_stdp_exercise,
        skip=_NO_FORWARD,
    ),
    ConformanceCase(
        "stdp_multiplicative_nearest",
        lambda: STDP(4, 3, weight_dependence="multiplicative", pairing="nearest"),
        exercise=_stdp_exercise,
        skip=_NO_FORWARD,
    ),
    ConformanceCase(
        "adaptive_threshold",
        lambda: AdaptiveThreshold(3, alpha=0.2, tau_theta=5.0, rho=0.1),
        exercise=_threshold_exercise,
        skip=_NO_FORWARD,
    ),
    ConformanceCase(
        "hippocampal_cam",
        _cam_model,
        input_factory=_cam_input,
        exercise=lambda cam: cam.learn(2, torch.tensor([0.0, 1, 0, 0, 1, 0, 0, 1])),
    ),
    ConformanceCase(
        "sfq_layer",
        lambda: SFQLayer(2, 3, generator=torch.Generator().manual_seed(1)),
        input_factory=_sfq_input,
        exercise=_set_probs,
    ),
    ConformanceCase(
        "sfq_network_2_4_1",
        lambda: SFQNetwork([2, 4, 1], generator=torch.Generator().manual_seed(2)),
        input_factory=_sfq_input,
        exercise=lambda net: _set_probs(net.layers[0]),
    ),
]
