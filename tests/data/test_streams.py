"""label_permutations and LabelShiftStream: phase maps, label remapping, determinism, resume."""

from __future__ import annotations

import json

import pytest
import torch

from neuroplast.data import LabelShiftStream, label_permutations


def test_label_permutations_structure():
    perms = label_permutations(10, 6, seed=0)
    assert perms.shape == (6, 10) and perms.dtype == torch.int64
    assert torch.equal(perms[0], torch.arange(10))
    for p in range(6):
        assert torch.equal(torch.sort(perms[p]).values, torch.arange(10))
    for p in range(1, 6):
        assert not torch.equal(perms[p], perms[p - 1])
    assert torch.equal(label_permutations(10, 6, seed=0), perms)
    assert not torch.equal(label_permutations(10, 6, seed=1)[1:], perms[1:])


def test_label_permutations_two_classes_must_alternate():
    # with 2 classes the only permutation differing from the previous one is the other one
    perms = label_permutations(2, 7, seed=3)
    for p in range(7):
        assert perms[p].tolist() == ([0, 1] if p % 2 == 0 else [1, 0])


def test_label_permutations_errors():
    assert label_permutations(1, 1, seed=0).tolist() == [[0]]
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        label_permutations(1, 2, seed=0)
    with pytest.raises(ValueError, match="num_phases"):
        label_permutations(3, 0, seed=0)
    with pytest.raises(TypeError, match="seed"):
        label_permutations(3, 2, seed="0")


def make_stream(**kw) -> tuple[LabelShiftStream, torch.Tensor]:
    n = 23
    y = torch.arange(n) % 5
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)  # x carries its own index
    args = dict(batch_size=4, steps_per_phase=6, num_phases=3, seed=11)
    args.update(kw)
    return LabelShiftStream(x, y, **args), y


def test_stream_phases_and_remapped_labels():
    stream, y = make_stream()
    perms = label_permutations(5, 3, seed=11)
    assert torch.equal(stream.permutations, perms)
    batches = list(stream)
    assert len(batches) == len(stream) == 18
    for s, (phase, x, yr) in enumerate(batches):
        assert phase == s // 6
        assert x.shape == (4, 3) and yr.dtype == torch.int64
        idx = x[:, 0].long()
        assert torch.equal(yr, perms[phase][y[idx]])
    assert {b[0] for b in batches} == {0, 1, 2}
    assert list(stream) == []  # exhausted: iteration continues from the current position


def test_stream_samples_without_replacement_within_a_pass():
    stream, _ = make_stream(steps_per_phase=10, num_phases=1)
    per_pass = stream.batches_per_epoch  # 23 // 4 = 5 batches, the last 3 samples dropped
    assert per_pass == 5
    idx = [b[1][:, 0].long() for b in stream]
    for e in range(2):
        seen = torch.cat(idx[e * per_pass:(e + 1) * per_pass])
        assert len(set(seen.tolist())) == 20  # distinct within one pass
    assert not torch.equal(torch.cat(idx[:5]), torch.cat(idx[5:10]))  # a fresh order each pass


def same(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_stream_determinism_and_resume():
    full = [(p, x.clone(), y.clone()) for p, x, y in make_stream()[0]]
    again = list(make_stream()[0])
    assert all(same(a, b) for a, b in zip(full, again, strict=True))
    other = list(make_stream(seed=12)[0])
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(full, other, strict=True))

    # run 8 steps (into phase 1 and past a pass boundary), checkpoint, resume in a fresh object
    first, _ = make_stream()
    it = iter(first)
    head = [next(it) for _ in range(8)]
    state = json.loads(json.dumps(first.state_dict()))  # JSON scalars only
    assert state["step"] == 8
    resumed, _ = make_stream()
    resumed.load_state_dict(state)
    tail = list(resumed)
    assert len(head) + len(tail) == len(full)
    assert all(same(a, b) for a, b in zip(head + tail, full, strict=True))
    # random access agrees with iteration
    p, x, yr = make_stream()[0].batch(13)
    assert same((p, x, yr), full[13])


def test_stream_errors():
    stream, _ = make_stream()
    state = stream.state_dict()
    other, _ = make_stream(batch_size=5)
    with pytest.raises(ValueError, match="batch_size=4"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="outside"):
        stream.load_state_dict({**state, "step": 99})
    x = torch.zeros(6, 2)
    with pytest.raises(ValueError, match="batch_size must be <="):
        LabelShiftStream(x, torch.zeros(6, dtype=torch.int64), 7, 1, 1, 0)
    with pytest.raises(ValueError, match="dataset_y has 5"):
        LabelShiftStream(x, torch.zeros(5, dtype=torch.int64), 2, 1, 1, 0)
    with pytest.raises(ValueError, match="int64"):
        LabelShiftStream(x, torch.zeros(6), 2, 1, 1, 0)
    with pytest.raises(ValueError, match="num_classes=3"):
        LabelShiftStream(x, torch.tensor([0, 1, 2, 3, 0, 1]), 2, 1, 2, 0, num_classes=3)
