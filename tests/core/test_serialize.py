"""save_state / load_state: round trips of the structures checkpoints hold, and clear errors."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroplast.core import load_state, save_state
from neuroplast.core.serialize import state_paths


def _assert_same(a, b):
    """Structural equality that also checks container types, key types and tensor dtypes."""
    if isinstance(a, dict):  # a module state_dict comes back as an OrderedDict, others as dicts
        assert type(b) is (type(a) if hasattr(a, "_metadata") else dict)
        assert getattr(a, "_metadata", None) == getattr(b, "_metadata", None)
    else:
        assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def _net():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))


def test_training_checkpoint_roundtrip_resumes_identically(tmp_path):
    torch.manual_seed(0)
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(8, 3)
    for _ in range(3):
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
             "step": 3, "python_random": random.getstate(),
             "numpy_random": np.random.default_rng(1).bit_generator.state}
    save_state(tmp_path / "ck", state)
    loaded = load_state(tmp_path / "ck")
    _assert_same(state["model"], loaded["model"])  # includes the module versions (_metadata)
    assert loaded["model"]._metadata["1"]["version"] == 2  # BatchNorm1d
    assert set(loaded["optimizer"]["state"]) == {0, 1, 2, 3, 4, 5}  # int keys preserved
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    random.setstate(loaded["python_random"])  # accepts the tuple structure

    # Oracle: continuing from the loaded state equals continuing the original.
    model2 = _net()
    model2.load_state_dict(loaded["model"])
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    opt2.load_state_dict(loaded["optimizer"])
    gen2 = torch.Generator()
    gen2.set_state(loaded["generator"])
    for m, o, g in ((model, opt, gen), (model2, opt2, gen2)):
        o.zero_grad()
        (m(x) * torch.rand(8, 2, generator=g)).sum().backward()
        o.step()
    for p, q in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p, q)


def test_special_values_and_types_roundtrip(tmp_path):
    nested = {
        1: "int key", "s": [1, 2.5, True, None, "x"], "t": (1, (2, 3)), "nan": float("nan"),
        "inf": [float("inf"), float("-inf")], "arr": np.arange(6, dtype=np.int16).reshape(2, 3),
        "empty": torch.empty(0, 3), "half": torch.ones(2, dtype=torch.bfloat16), "bool": torch.tensor([True]),
        "__tensor__": "a user key that looks like a tag", "nested": {"__tuple__": [1]},
    }
    save_state(tmp_path / "s", nested)
    _assert_same(nested, load_state(tmp_path / "s"))
    # The JSON file is strict JSON (no NaN/Infinity tokens).
    json.loads((tmp_path / "s.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-strict {c}"))


def test_shared_and_noncontiguous_tensors(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    nested = {"a": base, "view": base.t(), "same": base}
    save_state(tmp_path / "x", nested)
    out = load_state(tmp_path / "x")
    _assert_same(nested, out)
    out["a"][0, 0] = 100.0
    assert out["view"][0, 0] == 0.0  # loaded tensors are independent


def test_suffix_is_optional(tmp_path):
    save_state(tmp_path / "a.json", {"x": 1})
    assert state_paths(tmp_path / "a.safetensors") == (tmp_path / "a.safetensors", tmp_path / "a.json")
    assert load_state(tmp_path / "a") == {"x": 1}


def test_unsupported_values_raise_before_writing(tmp_path):
    with pytest.raises(TypeError, match=r"nested\['a.b'\].*set"):
        save_state(tmp_path / "bad", {"a": {"b": {1, 2}}})
    with pytest.raises(TypeError, match="dict keys"):
        save_state(tmp_path / "bad", {(1, 2): 3})
    assert list(tmp_path.iterdir()) == []


def test_missing_corrupt_and_mismatched_files(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        load_state(tmp_path / "nothing")
    save_state(tmp_path / "a", {"w": torch.ones(3)})
    save_state(tmp_path / "b", {"w": torch.zeros(3)})
    # A tensor file from another save (as after a crash between the two replaces).
    (tmp_path / "a.safetensors").write_bytes((tmp_path / "b.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not match"):
        load_state(tmp_path / "a")
    (tmp_path / "b.json").write_text("{ not json")
    with pytest.raises(ValueError, match="corrupt JSON"):
        load_state(tmp_path / "b")
    (tmp_path / "c.json").write_text(json.dumps({"hello": 1}))
    (tmp_path / "c.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="not a neuroplast state file"):
        load_state(tmp_path / "c")
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
trees = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.tuples(kids, kids)
    | st.dictionaries(st.text(max_size=4) | st.integers(), kids, max_size=3),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None)
@given(tree=trees)
def test_property_any_json_tree_roundtrips(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("h") / "t"
    save_state(path, {"tree": tree, "t": torch.arange(3)})
    _assert_same({"tree": tree, "t": torch.arange(3)}, load_state(path))
