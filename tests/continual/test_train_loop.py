"""The train-over-tasks loop: accuracy matrix, partial saves, resume, joint training, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from neuroplast.continual.gpm import GPM
from neuroplast.continual.replay import Replay
from neuroplast.continual.scenarios import permuted, split
from neuroplast.continual.strategy import FineTune, Strategy
from neuroplast.continual.train import ContinualResult, run_continual, sgd


def _mlp(n_in: int = 64, n_out: int = 10, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, n_out))


@pytest.fixture(scope="module")
def scn():
    return permuted(3, source="digits", seed=0, train_per_task=300, test_per_task=100)


def test_accuracy_matrix_times_and_summary(scn):
    res = run_continual(
        _mlp(),
        scn,
        FineTune(),
        optimizer_fn=sgd(0.1, momentum=0.9),
        epochs=2,
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
    )
    R = res.R
    assert R.shape == (3, 3) and torch.isfinite(R).all()  # every task evaluated after every task
    assert float(R[0, 0]) > 60.0  # learnt
    s = res.summary()
    assert (
        s["tasks_done"] == 3 and len(s["seconds_per_task"]) == 3 and all(t > 0 for t in s["seconds_per_task"])
    )
    assert s["acc"] == pytest.approx(float(R[2].mean()))
    assert s["bwt"] == pytest.approx(float((R[2, :2] - R.diagonal()[:2]).mean()))
    assert s["steps"] == [2 * math.ceil(300 / 16)] * 3
    json.dumps(s)  # JSON-ready


class _Boom(Strategy):
    name = "boom"

    def __init__(self, at: int) -> None:
        self.at, self.seen = at, 0

    def before_task(self, task):
        if self.seen == self.at:
            raise RuntimeError("boom")
        self.seen += 1


def test_failed_run_keeps_the_matrix_of_finished_tasks(scn, tmp_path):
    path = tmp_path / "R.json"
    with pytest.raises(RuntimeError, match="boom") as info:
        run_continual(_mlp(), scn, _Boom(at=2), epochs=1, batch_size=32, save_to=path)
    assert any("2 finished task" in n for n in getattr(info.value, "__notes__", []))
    saved = json.loads(path.read_text())
    assert saved["tasks_done"] == 2
    assert saved["R"][2] == [None, None, None] and None not in saved["R"][1]
    assert saved["acc"] == pytest.approx(sum(saved["R"][1][:2]) / 2)


def test_resume_after_a_task_equals_an_uninterrupted_run(scn):
    def fresh():
        model = _mlp()
        return model, Replay(64, generator=torch.Generator().manual_seed(1)), torch.Generator().manual_seed(0)

    model, strat, gen = fresh()
    saved = {}

    def keep(i, res):
        if i == 0:
            saved.update(
                model={k: v.clone() for k, v in model.state_dict().items()},
                strat=strat.state_dict(),
                gen=gen.get_state(),
                res=res.state_dict(),
            )

    full = run_continual(model, scn, strat, epochs=1, batch_size=16, generator=gen, on_task_end=keep)
    model2, strat2, gen2 = fresh()
    model2.load_state_dict(saved["model"])
    strat2.load_state_dict(saved["strat"])
    gen2.set_state(saved["gen"])
    res2 = run_continual(
        model2,
        scn,
        strat2,
        epochs=1,
        batch_size=16,
        generator=gen2,
        result=ContinualResult.from_state(saved["res"]),
    )
    assert torch.equal(res2.R, full.R)
    for p, q in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p, q)


def test_joint_training_fills_only_the_last_row(scn):
    res = run_continual(
        _mlp(),
        scn,
        None,
        optimizer_fn=sgd(0.1),
        epochs=2,
        batch_size=16,
        joint=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.isnan(res.R[:2]).all() and torch.isfinite(res.R[2]).all()
    s = res.summary()
    assert s["bwt"] is None and s["acc"] == pytest.approx(float(res.R[2].mean())) and len(s["steps"]) == 1
    assert s["steps"][0] == 2 * math.ceil(900 / 16)  # one pass over the union per epoch


def test_multi_head_runs_use_the_heads():
    s = split(5, source="digits", seed=0, incremental="task", test_per_task=40)
    res = run_continual(
        _mlp(),
        s,
        None,
        optimizer_fn=sgd(0.1),
        epochs=1,
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
    )
    assert float(res.R[-1, -1]) > 80.0  # 2-way heads are easy


def test_errors_name_the_problem(scn):
    with pytest.raises(TypeError, match="Strategy"):
        run_continual(_mlp(), scn, object())
    with pytest.raises(ValueError, match="3 tasks"):
        run_continual(_mlp(), scn, result=ContinualResult.empty(4))
    with pytest.raises(ValueError, match="epochs"):
        run_continual(_mlp(), scn, epochs=0)
    with pytest.raises(FloatingPointError, match="permuted-0"):
        run_continual(_mlp(), scn, optimizer_fn=sgd(1e12), epochs=1, batch_size=16)
    with pytest.raises(RuntimeError, match="mat1 and mat2|shape"):  # model made for other inputs
        run_continual(_mlp(n_in=784), scn, GPM(_mlp(n_in=784)), epochs=1)
