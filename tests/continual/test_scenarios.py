"""Scenarios: determinism, heads, transforms, and clear errors for bad input."""

from __future__ import annotations

import pytest
import torch

from neuroplast.continual.scenarios import MNIST_MEAN_STD, Scenario, Task, permuted, rotated, split
from neuroplast.data import digits


@pytest.fixture(scope="module")
def pm():
    return permuted(3, source="digits", seed=0)


def test_permuted_tasks_are_fixed_permutations_of_the_same_images(pm):
    ds = digits(seed=0)
    assert len(pm) == 3 and pm.source == "digits" and pm.kind == "domain-incremental"
    assert pm.n_outputs == 10 and not pm.multi_head and pm.head_mask().all()
    idx = torch.arange(5)
    for task in pm:
        x = task.inputs("train", idx).flatten(1)
        raw = ds.x_train[idx].flatten(1)
        perm = task.transform.perm
        torch.testing.assert_close(x, raw[:, perm], rtol=0, atol=0)
        # same multiset of pixel values per image: a permutation, not a new image
        torch.testing.assert_close(x.sort(1).values, raw.sort(1).values, rtol=0, atol=0)
    perms = [t.transform.perm for t in pm]
    assert not torch.equal(perms[0], perms[1]) and not torch.equal(perms[1], perms[2])


def test_normalize_standardizes_the_pixels_of_every_task(pm):
    # oracle: (x - mean) / std of the raw task inputs (pixel standardization commutes with permuting)
    mean, std = MNIST_MEAN_STD
    pn = permuted(3, source="digits", seed=0, normalize=MNIST_MEAN_STD)
    idx = torch.arange(7)
    for raw, task in zip(pm, pn, strict=True):
        for part in ("train", "test"):
            torch.testing.assert_close(task.inputs(part, idx), (raw.inputs(part, idx) - mean) / std)
        assert torch.equal(task.y_train, raw.y_train)
    assert pn.describe()["normalize"] == [mean, std] and pm.describe()["normalize"] is None
    sn, sr = split(5, source="digits", seed=0, normalize=(0.5, 2.0)), split(5, source="digits", seed=0)
    torch.testing.assert_close(sn[1].inputs("test"), (sr[1].inputs("test") - 0.5) / 2.0)
    for bad in ((0.1, 0.0), (0.1,), "ab", (float("nan"), 1.0)):
        with pytest.raises(ValueError, match="normalize"):
            permuted(2, source="digits", normalize=bad)


def test_deterministic_from_seed():
    a, b, c = (permuted(2, source="digits", seed=s, train_per_task=100) for s in (5, 5, 6))
    for ta, tb in zip(a, b, strict=True):
        torch.testing.assert_close(ta.inputs("train"), tb.inputs("train"), rtol=0, atol=0)
        assert torch.equal(ta.y_train, tb.y_train)
    assert not torch.equal(a[0].inputs("train"), c[0].inputs("train"))


def test_multi_head_permuted_offsets_labels_and_heads():
    s = permuted(3, source="digits", seed=0, multi_head=True, train_per_task=50, test_per_task=20)
    assert s.n_outputs == 30 and s.kind == "task-incremental"
    mask = s.head_mask()
    for i, t in enumerate(s):
        assert t.classes.tolist() == list(range(10 * i, 10 * i + 10))
        assert int(t.y_train.min()) >= 10 * i and int(t.y_train.max()) < 10 * (i + 1)
        assert mask[i].nonzero().reshape(-1).tolist() == t.classes.tolist()
        assert (t.n_train, t.n_test) == (50, 20)


def test_split_task_and_class_incremental():
    ti = split(5, source="digits", seed=0, incremental="task")
    ci = split(5, source="digits", seed=0, incremental="class")
    assert ti.multi_head and ti.kind == "task-incremental"
    assert not ci.multi_head and ci.kind == "class-incremental" and ci.head_mask().all()
    for i, (a, b) in enumerate(zip(ti, ci, strict=True)):
        assert a.classes.tolist() == [2 * i, 2 * i + 1]
        assert set(a.y_train.unique().tolist()) == {2 * i, 2 * i + 1}
        assert torch.equal(a.y_test, b.y_test)
    counts = sum(t.n_train + t.n_test for t in ti)
    assert counts == 1797  # every digit image used exactly once
    with pytest.raises(ValueError, match="equal groups"):
        split(3, source="digits")


def test_rotated_first_task_is_identity_and_others_rotate():
    s = rotated(2, source="digits", seed=0, degrees=[0.0, 90.0])
    x0 = s[0].inputs("test", torch.arange(4))
    x1 = s[1].inputs("test", torch.arange(4))
    torch.testing.assert_close(x1, torch.rot90(x0, 1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_joint_task_keeps_order_labels_and_task_ids(pm):
    joint = pm.joint()
    assert joint.n_train == sum(t.n_train for t in pm)
    idx = torch.tensor([joint.n_train - 1, 0, pm[0].n_train, 3])
    b = joint.batch("train", idx)
    assert b.t.tolist() == [2, 0, 1, 0]
    torch.testing.assert_close(b.x[1], pm[0].inputs("train", torch.tensor([0]))[0])
    torch.testing.assert_close(b.x[2], pm[1].inputs("train", torch.tensor([0]))[0])
    assert b.y[0] == pm[2].y_train[-1]


def test_task_id_out_of_range_is_a_clear_error(pm):
    with pytest.raises(IndexError, match="out of range.*3 tasks"):
        pm[3]
    with pytest.raises(TypeError, match="int"):
        pm["0"]


def test_mismatched_input_shapes_are_rejected():
    a = Task(
        0,
        "a",
        torch.zeros(4, 1, 8, 8),
        torch.zeros(4, dtype=torch.int64),
        torch.zeros(2, 1, 8, 8),
        torch.zeros(2, dtype=torch.int64),
        torch.arange(10),
    )
    b = Task(
        1,
        "b",
        torch.zeros(4, 1, 28, 28),
        torch.zeros(4, dtype=torch.int64),
        torch.zeros(2, 1, 28, 28),
        torch.zeros(2, dtype=torch.int64),
        torch.arange(10),
    )
    with pytest.raises(ValueError, match=r"task 1 \('b'\) has inputs of shape \(1, 28, 28\)"):
        Scenario("bad", (a, b), 10, False, "domain-incremental", "test")


def test_bad_sources_and_sizes():
    with pytest.raises(ValueError, match="source"):
        permuted(2, source="cifar")
    with pytest.raises(ValueError, match="train_per_task"):
        permuted(2, source="digits", train_per_task=10**6)
    with pytest.raises(ValueError, match="n_tasks"):
        permuted(0, source="digits")
