"""Small image classifiers to visualise, and the measures of synthesised images used by the AM studies.

- ``SmallCNN``: conv(3x3) - ReLU - maxpool - conv(3x3) - ReLU - maxpool - fc - ReLU - fc: the network
  whose units are maximised (arXiv:1904.08939, arXiv:1605.09304 at small scale).
- ``OtherCNN``: a differently built classifier (5x5 stride-2 convolutions, tanh, no pooling), trained on
  other images with another seed: the "independent classifier" whose verdict on a synthesised image is
  the proxy for "looks like the class" (recognition rate = P(argmax D(x*) = target class)).
- ``site_activations``: a_i(x) of every neuron of a site over a data set (same reduction as
  ``maximize``); ``nearest_neighbour_distance``: min_j ||x - d_j||_2 over a reference set (DGN-AM's
  "lies nearer the data").
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplast.core.sites import Site, resolve_site

__all__ = ["SmallCNN", "OtherCNN", "fit_classifier", "accuracy", "recognition_rate", "site_activations",
           "nearest_neighbour_distance"]


def _shape(shape: Sequence[int]) -> tuple[int, int, int]:
    if len(shape) != 3 or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape):
        raise ValueError(f"shape: expected (C, H, W) with positive ints, got {tuple(shape)!r}")
    return int(shape[0]), int(shape[1]), int(shape[2])


class SmallCNN(nn.Module):
    """conv1 - relu1 - pool1 - conv2 - relu2 - pool2 - fc1 - relu3 - fc2 (logits). Sites by those names."""

    def __init__(self, shape: Sequence[int] = (1, 28, 28), classes: int = 10, width: int = 8,
                 hidden: int = 64) -> None:
        super().__init__()
        c, h, w = _shape(shape)
        self.conv1 = nn.Conv2d(c, width, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(2 * width * (h // 4) * (w // 4), hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc2(self.relu3(self.fc1(x.flatten(1))))


class OtherCNN(nn.Module):
    """conv(5x5, stride 2) - tanh - conv(5x5, stride 2) - tanh - fc: an architecture unlike SmallCNN's."""

    def __init__(self, shape: Sequence[int] = (1, 28, 28), classes: int = 10, width: int = 12) -> None:
        super().__init__()
        c, h, w = _shape(shape)
        self.conv1 = nn.Conv2d(c, width, 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(width, 2 * width, 5, stride=2, padding=2)
        h2, w2 = math.ceil(math.ceil(h / 2) / 2), math.ceil(math.ceil(w / 2) / 2)
        self.fc = nn.Linear(2 * width * h2 * w2, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.tanh(self.conv2(torch.tanh(self.conv1(x))))
        return self.fc(x.flatten(1))


def fit_classifier(model: nn.Module, x: Tensor, y: Tensor, *, epochs: int = 5, batch_size: int = 64,
                   lr: float = 1e-3, generator: torch.Generator | None = None) -> list[float]:
    """Train ``model`` in place by Adam on cross-entropy; returns each epoch's mean training loss."""
    if not isinstance(x, Tensor) or x.dim() != 4 or not isinstance(y, Tensor) or y.shape != (len(x),):
        raise ValueError("x, y: expected images (N, C, H, W) and labels (N,)")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs: expected an int >= 1, got {epochs!r}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(int(epochs)):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
    model.eval()
    return losses


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch_size: int = 1000) -> Tensor:
    was = model.training
    model.eval()
    try:
        return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was)


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Fraction of samples whose argmax logit equals the label."""
    return float((_predict(model, x) == y).double().mean())


def recognition_rate(classifier: nn.Module, images: Tensor, targets: Tensor) -> float:
    """P(argmax classifier(x*) = target): how often a classifier recognises the intended class."""
    if images.shape[0] != targets.shape[0]:
        raise ValueError(f"targets: expected {images.shape[0]} labels, got {targets.shape[0]}")
    return accuracy(classifier, images, targets)


@torch.no_grad()
def site_activations(model: nn.Module, site: Site | str, x: Tensor, batch_size: int = 1000) -> Tensor:
    """a(x) of every neuron of ``site`` for every sample, (N, neurons): the neuron's value (last-axis
    sites) or the mean of its channel over the other positions (conv sites), as ``maximize`` scores it."""
    s = resolve_site(model, site)
    out: list[Tensor] = []

    def hook(_m: nn.Module, _i: object, o: object) -> None:
        o = o[0] if isinstance(o, tuple | list) else o
        n = o.shape[s.axis % o.dim()]
        out.append(o.movedim(s.axis % o.dim(), -1).reshape(o.shape[0], -1, n).mean(1))

    was = model.training
    handle = s.module.register_forward_hook(hook)
    try:
        model.eval()
        for i in range(0, len(x), batch_size):
            model(x[i : i + batch_size])
    finally:
        handle.remove()
        model.train(was)
    return torch.cat(out)


def nearest_neighbour_distance(images: Tensor, data: Tensor, batch_size: int = 256) -> Tensor:
    """min_j ||x_b - d_j||_2 over flattened images, one value per image: shape (B,)."""
    if images.shape[1:] != data.shape[1:]:
        raise ValueError(f"images, data: expected the same sample shape, got {tuple(images.shape[1:])} "
                         f"and {tuple(data.shape[1:])}")
    a, d = images.flatten(1).double(), data.flatten(1).double()
    return torch.cat(
        [torch.cdist(a[i : i + batch_size], d).min(1).values for i in range(0, len(a), batch_size)]
    ).float()
