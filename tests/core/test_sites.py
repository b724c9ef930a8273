"""find_sites / units / Site: glob matching, axis inference, errors that name close modules."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neuroplast.core import Site, find_sites, units
from neuroplast.core.sites import resolve_site, resolve_sites


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.ReLU(), nn.Dropout())
        self.rnn = nn.GRU(8, 5, batch_first=True)
        self.head = nn.Linear(5, 2)


def test_glob_patterns_match_named_modules_in_order():
    net = Net()
    names = [s.name for s in find_sites(net, "encoder.*")]
    assert names == ["encoder.0", "encoder.1", "encoder.2", "encoder.3"]
    both = [s.name for s in find_sites(net, ["head", "features.?"])]
    assert both == ["head", "features.0", "features.1", "features.2", "features.3"]
    # duplicates across patterns are dropped; the root is never matched by a glob
    assert [s.name for s in find_sites(net, ["head", "he*"])] == ["head"]
    assert "" not in [s.name for s in find_sites(net, "*")]
    site = find_sites(net, "head")[0]
    assert site.module is net.head and isinstance(site, Site)


@pytest.mark.parametrize(
    ("name", "axis"),
    [
        ("features.0", 1),  # Conv2d: channels
        ("features.1", 1),  # BatchNorm2d
        ("features.2", 1),  # ReLU after a conv inherits the channel axis
        ("features.3", 1),  # pooling
        ("features", 1),  # a container takes its last leaf's axis
        ("encoder.0", -1),  # Flatten
        ("encoder.1", -1),  # Linear
        ("encoder.2", -1),  # ReLU after a Linear
        ("encoder.3", -1),  # Dropout inherits
        ("rnn", -1),
        ("head", -1),
    ],
)
def test_axis_inferred_from_module_type(name, axis):
    assert find_sites(Net(), name)[0].axis == axis


def test_explicit_axis_overrides_and_unknown_modules_default_to_last():
    net = Net()
    assert {s.axis for s in find_sites(net, "features.*", axis=-1)} == {-1}

    class Spiking(nn.Module):  # a custom neuron layer: time-first [T, B, N]
        def forward(self, x):
            return (x > 0).float()

    model = nn.Sequential(nn.Conv2d(1, 2, 1), Spiking())
    assert find_sites(model, "1")[0].axis == -1


def test_a_module_declaring_neuron_axis_is_taken_at_its_word():
    class Heads(nn.Identity):  # output (B, T, heads, d): the neurons are the heads
        neuron_axis = 2

    model = nn.Sequential(nn.Linear(4, 4), Heads(), nn.ReLU(), nn.Linear(4, 4))
    assert [s.axis for s in find_sites(model, ["0", "1", "2", "3"])] == [-1, 2, 2, -1]
    assert find_sites(model, "1", axis=-1)[0].axis == -1  # explicit axis still wins
    Heads.neuron_axis = True  # not an int axis: ignored, Identity inherits
    assert find_sites(model, "1")[0].axis == -1


def test_no_match_lists_the_closest_names():
    with pytest.raises(ValueError, match="matches no module") as info:
        find_sites(Net(), "encodr.1")
    msg = str(info.value)
    assert "'encoder.1' (Linear)" in msg
    assert msg.split("closest names: ")[1].startswith("'encoder.1'")  # the best match first (difflib)
    with pytest.raises(ValueError, match="'he'"):
        find_sites(Net(), ["head", "he"])  # every pattern must match


def test_bad_arguments_are_type_errors():
    with pytest.raises(TypeError, match="nn.Module"):
        find_sites("not a model", "x")
    with pytest.raises(TypeError, match="axis"):
        find_sites(Net(), "head", axis=1.0)
    with pytest.raises(TypeError, match="pattern"):
        find_sites(Net(), [1])


def test_resolve_site_requires_exactly_one_and_ownership():
    net = Net()
    assert resolve_site(net, "head").name == "head"
    with pytest.raises(ValueError, match="matches 4 modules"):
        resolve_site(net, "encoder.*")
    foreign = Site("head", nn.Linear(5, 2), -1)
    with pytest.raises(ValueError, match="not a module"):
        resolve_sites(net, [foreign])
    mixed = resolve_sites(net, [find_sites(net, "head")[0], "head", "rnn"])
    assert [s.name for s in mixed] == ["head", "rnn"]


def test_units_examples():
    x = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    u = units(x, 1)
    assert u.shape == (2 * 4 * 5, 3)
    # sample (b, h, w) of channel c is x[b, c, h, w]
    assert u[0 * 20 + 2 * 5 + 3, 1] == x[0, 1, 2, 3]
    t = torch.randn(7, 3, 6)  # [T, B, N]
    assert torch.equal(units(t, -1), t.reshape(21, 6))
    assert units(torch.ones(4), 0).shape == (1, 4)
    with pytest.raises(ValueError, match="axis 3"):
        units(torch.ones(2, 3), 3)
    with pytest.raises(ValueError, match=r"shape \(\)"):
        units(torch.tensor(1.0), 0)


@settings(max_examples=50, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data())
def test_units_property_preserves_each_neurons_values(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = torch.randn(*shape)
    u = units(x, axis)
    n = shape[axis]
    assert u.shape == (x.numel() // n, n)
    for j in range(n):  # neuron j's samples are exactly the slice at index j along axis
        assert torch.equal(u[:, j].sort().values, x.select(axis, j).reshape(-1).sort().values)
