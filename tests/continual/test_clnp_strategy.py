"""CLNP: exact zero forgetting, graceful pruning within tolerance, cut connections, diagnostics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroplast.continual.clnp import CLNP
from neuroplast.continual.scenarios import permuted, split
from neuroplast.continual.train import ContinualResult, evaluate_task, run_continual, sgd


def _mlp(n_in: int, n_out: int, h: int = 32, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(n_in, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, n_out)
    )


@pytest.fixture(scope="module")
def trained():
    scn = split(5, source="digits", seed=0, incremental="task")
    model = _mlp(64, 10)
    clnp = CLNP(
        model,
        ["1", "3", "5"],
        ["2", "4"],
        l1=1e-3,
        tolerance=1.0,
        n_val=300,
        generator=torch.Generator().manual_seed(0),
    )
    logits = {}

    def snap(i, res):
        with torch.no_grad():
            logits[i] = {j: model(scn[j].inputs("test")).clone() for j in range(i + 1)}

    res = run_continual(
        model,
        scn,
        clnp,
        optimizer_fn=sgd(0.1, momentum=0.9),
        epochs=2,
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
        on_task_end=snap,
    )
    return scn, model, clnp, res, logits


def test_zero_forgetting_is_exact(trained):
    scn, model, clnp, res, logits = trained
    R = res.R
    for j in range(5):
        assert (R[j:, j] == R[j, j]).all(), R  # bitwise the same accuracy after every later task
        head = scn[j].classes
        for i in range(j, 5):  # and bitwise the same logits on the task's own head
            assert torch.equal(logits[i][j][:, head], logits[j][j][:, head])
    assert res.summary()["bwt"] == 0.0
    assert float(R[-1].mean()) > 90.0  # the tasks are actually learnt


def test_diagnostics_account_for_every_neuron(trained):
    _, _, clnp, res, _ = trained
    hist = res.diagnostics
    assert [h["task"] for h in hist] == list(range(5))
    for l in range(2):
        free = [h["layers"][l]["free"] for h in hist]
        taken = [h["layers"][l]["taken"] for h in hist]
        assert all(a >= b for a, b in zip(free, free[1:], strict=False))  # free neurons only shrink
        assert sum(taken) + free[-1] == 32  # each neuron is free or owned by exactly one task
        assert hist[0]["layers"][l]["reused"] == 0  # nothing to reuse on the first task
    assert any(h["layers"][0]["reused"] > 0 for h in hist[1:])  # later tasks read old neurons
    for h in hist:  # graceful forgetting stays within the tolerance (points, on the check samples)
        assert h["val_acc_after_pruning"] >= h["val_acc_before_pruning"] - 1.0 - 1e-9


def test_connections_from_free_into_owned_neurons_are_cut(trained):
    _, model, clnp, _, _ = trained
    for l in range(1, 3):
        w = clnp.layers[l].weight
        owner_in, owner_out = clnp.owner_[l - 1], clnp.owner_[l]
        for r in torch.nonzero(owner_out >= 0).reshape(-1):
            bad = (owner_in < 0) | (owner_in > owner_out[r])  # free, or owned by a later task
            assert (w[r, bad] == 0).all()


def test_pruning_removes_low_activity_neurons_with_zero_tolerance():
    scn = permuted(2, source="digits", seed=0, multi_head=True, train_per_task=300, test_per_task=50)
    model = _mlp(64, 20, h=48)
    clnp = CLNP(
        model,
        ["1", "3", "5"],
        ["2", "4"],
        l1=1e-2,
        tolerance=0.0,
        n_val=300,
        generator=torch.Generator().manual_seed(0),
    )
    run_continual(
        model,
        scn,
        clnp,
        optimizer_fn=sgd(0.1),
        epochs=3,
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
    )
    first = clnp.history_[0]
    assert first["val_acc_after_pruning"] >= first["val_acc_before_pruning"] - 1e-9
    assert first["layers"][0]["free"] > 0  # the L1 penalty left neurons unused, freed for task 1


def test_state_round_trip_and_resume_give_the_same_model():
    scn = split(5, source="digits", seed=1, incremental="task", train_per_task=60, test_per_task=20)
    ref_model = _mlp(64, 10)
    ref = CLNP(
        ref_model, ["1", "3", "5"], ["2", "4"], l1=1e-3, n_val=60, generator=torch.Generator().manual_seed(0)
    )
    gen = torch.Generator().manual_seed(0)
    saved = {}

    def keep(i, res):
        if i == 1:
            saved.update(
                model=ref_model.state_dict(), clnp=ref.state_dict(), gen=gen.get_state(), res=res.state_dict()
            )
            saved["model"] = {k: v.clone() for k, v in saved["model"].items()}

    full = run_continual(ref_model, scn, ref, epochs=1, batch_size=16, generator=gen, on_task_end=keep)

    model = _mlp(64, 10, seed=5)
    model.load_state_dict(saved["model"])
    clnp = CLNP(
        model, ["1", "3", "5"], ["2", "4"], l1=1e-3, n_val=60, generator=torch.Generator().manual_seed(0)
    )
    clnp.load_state_dict(saved["clnp"])
    gen2 = torch.Generator()
    gen2.set_state(saved["gen"])
    res = run_continual(
        model,
        scn,
        clnp,
        epochs=1,
        batch_size=16,
        generator=gen2,
        result=ContinualResult.from_state(saved["res"]),
    )
    assert res.tasks_done == 5
    assert torch.equal(res.R, full.R)  # resumed after task 1 == uninterrupted
    for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert all(torch.equal(a, b) for a, b in zip(clnp.owner_, ref.owner_, strict=True))


def test_single_head_scenarios_are_refused():
    scn = permuted(2, source="digits", seed=0, train_per_task=50, test_per_task=10)
    model = _mlp(64, 10)
    clnp = CLNP(model, ["1", "3", "5"], ["2", "4"], n_val=50)
    clnp.before_task(scn[0])
    clnp.after_task(scn[0])
    with pytest.raises(ValueError, match="multi-head"):
        clnp.before_task(scn[1])


def test_bad_construction():
    model = _mlp(64, 10)
    with pytest.raises(ValueError, match="one per hidden layer"):
        CLNP(model, ["1", "3", "5"], ["2"])
    with pytest.raises(TypeError, match="expected nn.Linear"):
        CLNP(model, ["1", "2", "5"], ["2", "4"])
    with pytest.raises(ValueError, match="closest names"):
        CLNP(model, ["1", "3", "fc"], ["2", "4"])
    with pytest.raises(ValueError, match="chain"):
        CLNP(model, ["3", "1", "5"], ["2", "4"])


def test_evaluate_task_uses_the_head():
    scn = split(5, source="digits", seed=0, incremental="task", test_per_task=30)
    model = _mlp(64, 10)
    acc_head = evaluate_task(model, scn[1], scn.head_mask()[1])
    assert 0.0 <= acc_head <= 100.0
