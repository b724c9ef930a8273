"""maximize(): the objective, the model left untouched, determinism, equal-activation snapshots, priors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroplast.core import find_sites
from neuroplast.visualize import (
    CodeImage,
    maximize,
    neuron_activation,
    site_activations,
    standard_transforms,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids contention on a shared machine (the numbers do not change)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _linear_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


def _conv_model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(3 * 36, 5))


def test_a_linear_unit_is_maximised_by_the_sign_pattern_of_its_weights():
    # a_i(x) = w_i . x + b_i on x = sigmoid(p) in (0, 1): the maximum puts x = 1 where w > 0, 0 where w < 0
    m = _linear_model()
    res = maximize(m, "1", [0, 2], shape=(1, 4, 4), steps=300, lr=0.2, generator=_g(0))
    w = m[1].weight.detach()
    for row, i in enumerate([0, 2]):
        assert torch.equal(res.images[row].flatten() > 0.5, w[i] > 0)
        best = float(w[i].clamp(min=0).sum() + m[1].bias[i].detach())
        assert float(res.activations[row]) == pytest.approx(best, abs=0.05 * float(w[i].abs().sum()))
    assert torch.equal(res.neurons, torch.tensor([0, 2]))
    assert res.history.shape == (300, 2) and bool((res.history[-1] > res.history[0]).all())


def test_channel_objective_is_the_mean_channel_activation():
    m = _conv_model()
    site = find_sites(m, "2")[0]  # Conv2d: axis 1
    assert site.axis == 1
    res = maximize(m, site, [1, 2], restarts=2, shape=(1, 6, 6), steps=40, lr=0.1,
                   generator=_g(0))
    assert res.images.shape == (4, 1, 6, 6) and res.neurons.tolist() == [1, 1, 2, 2]
    with torch.no_grad():
        ref = m[:3](res.images).mean((2, 3))  # (B, 3) mean channel activation
    torch.testing.assert_close(res.activations, ref[torch.arange(4), res.neurons])
    acts = site_activations(m, "2", res.images)
    torch.testing.assert_close(res.activations, acts[torch.arange(4), res.neurons])
    out = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(neuron_activation(out, 1, torch.tensor([2, 0])),
                               torch.stack([out[0, 2].mean(), out[1, 0].mean()]))


def test_model_weights_grads_mode_and_hooks_are_left_as_they_were():
    m = _conv_model()
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    maximize(m, "5", 3, param="fourier", shape=(1, 6, 6), steps=5, transforms=standard_transforms(6), l2=0.1,
             tv=0.1, generator=_g(0))
    assert m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert all(p.grad is None for p in m.parameters())
    assert all(not mod._forward_hooks for mod in m.modules())
    with pytest.raises(ValueError, match="neuron: site '5' has 5 neurons"):
        maximize(m, "5", [1, 7], shape=(1, 6, 6), steps=3)
    assert m.training and all(not mod._forward_hooks for mod in m.modules())
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_same_generator_same_images_other_seed_other_images():
    m = _conv_model()

    def go(seed):
        return maximize(m, "5", [0, 4], param="fourier", shape=(1, 6, 6), steps=10,
                        transforms=standard_transforms(6), tv=0.01, generator=_g(seed))

    a, b, c = go(3), go(3), go(4)
    assert torch.equal(a.images, b.images) and torch.equal(a.history, b.history)
    assert not torch.equal(a.images, c.images)


def test_priors_pull_images_down():
    m = _linear_model()
    kw = dict(shape=(1, 4, 4), steps=150, lr=0.1)
    free = maximize(m, "1", 1, generator=_g(0), **kw)
    heavy = maximize(m, "1", 1, l2=5.0, generator=_g(0), **kw)
    assert float(heavy.images.sum()) < 0.5 * float(free.images.sum())
    assert float(heavy.activations[0]) < float(free.activations[0])


def test_match_records_the_first_step_that_reaches_the_level():
    m = _linear_model()
    kw = dict(shape=(1, 4, 4), steps=60, lr=0.05)
    free = maximize(m, "1", [0, 1, 2], generator=_g(0), **kw)
    level = torch.stack([free.history[30, 0], free.history[5, 1], torch.tensor(1e6)])
    res = maximize(m, "1", [0, 1, 2], match=level, generator=_g(0), **kw)
    h = res.history  # no transforms: the history is the clean activation before each step
    assert torch.equal(h, free.history)
    for b in range(2):
        k = int(res.matched_steps[b])
        assert k <= (30, 5)[b]
        assert float(h[k, b]) >= float(level[b]) and bool((h[:k, b] < level[b]).all())
        assert float(res.matched_activations[b]) == pytest.approx(float(h[k, b]), rel=1e-5)
    assert int(res.matched_steps[2]) == 60  # never reached: the final image
    assert torch.equal(res.matched_images[2], res.images[2])


def test_code_parameterisation_stays_in_its_box():
    torch.manual_seed(2)
    dec = nn.Sequential(nn.Linear(3, 16), nn.Sigmoid(), nn.Unflatten(1, (1, 4, 4)))
    m = _linear_model()
    lo, hi = -torch.ones(3), torch.ones(3)
    p = CodeImage(dec, torch.zeros(3), 4, lo, hi, sd=0.5, generator=_g(0))
    res = maximize(m, "1", [0, 1], restarts=2, param=p, steps=100, lr=0.3, code_l2=0.01,
                   generator=_g(0))
    assert res.codes is not None and res.codes.shape == (4, 3)
    assert bool((res.codes >= lo).all() and (res.codes <= hi).all())
    assert bool((res.codes.abs() == 1).any())  # the box is active: the objective pushes codes to its edges
    torch.testing.assert_close(res.images, dec(res.codes).detach())
    assert bool((res.history[-1] > res.history[0]).all())
    assert all(q.grad is None for q in dec.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(site="1", neuron=0), "shape"),
        (dict(site="1", neuron=0, shape=(1, 4, 4), param="cppn"), "param"),
        (dict(site="1", neuron=-1, shape=(1, 4, 4)), "neuron"),
        (dict(site="1", neuron=[0.5], shape=(1, 4, 4)), "neuron"),
        (dict(site="1", neuron=0, shape=(1, 4, 4), lr=0.0), "lr"),
        (dict(site="1", neuron=0, shape=(1, 4, 4), tv=-1.0), "tv"),
        (dict(site="1", neuron=0, shape=(1, 4, 4), restarts=0), "restarts"),
        (dict(site="1", neuron=0, shape=(1, 4, 4), match=torch.zeros(2)), "match"),
        (dict(site="nope", neuron=0, shape=(1, 4, 4)), "nope"),
        (dict(site="1", neuron=[0, 1], param=CodeImage(nn.Identity(), torch.zeros(16), 3)), "batch 2"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        maximize(_linear_model(), steps=2, **kwargs)
