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
from neuroplast.continual.train import (
    ContinualResult,
    Experiment,
    arm_generator,
    benchmark_setting,
    finish_arms,
    mnist_benchmarks,
    run_arms,
    run_benchmarks,
    run_continual,
    sgd,
)


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


def test_arm_generator_streams_are_fixed_and_distinct():
    draw = lambda g: torch.randint(1000, (8,), generator=g).tolist()  # noqa: E731
    assert draw(arm_generator(3, 5)) == draw(torch.Generator().manual_seed(3 * 1009 + 5))
    assert draw(arm_generator(3, 5)) != draw(arm_generator(3, 6)) != draw(arm_generator(4, 5))


def test_mnist_benchmarks_and_setting():
    pm, sp = mnist_benchmarks(
        0, n_tasks=2, source="digits", train_per_task=100, test_per_task=40, split_source="digits"
    )
    assert len(pm) == 2 and not pm.multi_head and pm[0].n_train == 100 and pm[0].n_test == 40
    assert len(sp) == 5 and sp.multi_head
    pm2, _ = mnist_benchmarks(0, n_tasks=2, source="digits", multi_head=True, split_source="digits")
    assert pm2.multi_head and pm2[0].n_train > 100  # 0: every image
    setting = benchmark_setting(pm, sp, lr=0.1, epochs=2, batch_size=16)
    assert setting == {
        "pmnist": pm.describe(),
        "split": sp.describe(),
        "source": pm.source,
        "lr": 0.1,
        "epochs": 2,
        "batch_size": 16,
    }
    json.dumps(setting)


class _Timing:
    def __init__(self) -> None:
        self.logged: dict = {}

    def timing(self, name, value):
        self.logged[name] = value


def test_run_arms_and_finish_arms(scn):
    exp = Experiment()
    built = []

    def model_fn():
        model = _mlp(seed=1)
        built.append(model)
        return model

    out = {
        "setting": {},
        "bench": run_arms(
            exp,
            "bench",
            scn,
            {"finetune": lambda m: None, "joint": lambda m: None, "replay": lambda m: Replay(32)},
            model_fn,
            lambda a: arm_generator(0, 100 + a),
            lr=0.1,
            epochs=1,
            batch_size=16,
            extras={"replay": lambda m, s: {"buffer": s.buffer.size_}},
        ),
    }
    assert list(out["bench"]) == ["finetune", "joint", "replay"] and len(built) == 3
    assert set(exp.done) == {"bench/finetune", "bench/joint", "bench/replay"}
    assert out["bench"]["joint"]["bwt"] is None and len(out["bench"]["joint"]["steps"]) == 1
    assert out["bench"]["replay"]["buffer"] == 32 and "buffer" not in out["bench"]["finetune"]
    # the same generator stream gives the same arm: run_arms is a plain loop over Experiment.arm
    again = run_continual(
        _mlp(seed=1), scn, None, optimizer_fn=sgd(0.1), batch_size=16, generator=arm_generator(0, 100)
    )
    assert out["bench"]["finetune"]["R"] == again.summary()["R"]

    run = _Timing()
    table = finish_arms(out, ("bench", "absent"), run)
    assert list(out) == ["setting", "bench", "table"] and table is out["table"]
    assert [(r["benchmark"], r["arm"]) for r in table] == [
        ("bench", a) for a in ("finetune", "joint", "replay")
    ]
    assert all("seconds_per_task" not in r and "time_vs_finetune" not in r for r in table)
    assert all(
        "seconds_per_task" not in s and "mean_seconds_per_task" not in s for s in out["bench"].values()
    )
    times = run.logged["arms"]
    assert set(times) == {"bench/finetune", "bench/joint", "bench/replay"}
    assert times["bench/finetune"]["time_vs_finetune"] == 1.0
    assert all(t["mean_seconds_per_task"] > 0 for t in times.values())
    out2 = {"bench": {"finetune": {"acc": 1.0, "mean_seconds_per_task": 2.0}}}
    finish_arms(out2, ["bench"])  # no run: the times are dropped
    assert out2["bench"] == {"finetune": {"acc": 1.0}} and out2["table"][0]["acc"] == 1.0


def test_run_benchmarks_follows_the_seeding_convention(scn):
    from neuroplast.continual.models import mlp

    exp = Experiment()
    calls = []

    def arms(scenario):
        calls.append(scenario)
        return {"finetune": lambda m: None, "replay": lambda m: Replay(16, generator=arm_generator(7, 5))}

    out = run_benchmarks(
        exp,
        [("a", scn, 1, 0.1), ("b", scn, 2, 0.05)],
        arms,
        lambda scenario, g: mlp(scenario.n_features, [16], scenario.n_outputs, generator=g),
        7,
        batch_size=32,
        extras={"b/replay": lambda m, s: {"seen": s.buffer.n_seen_}},
    )
    assert list(out) == ["a", "b"] and calls == [scn, scn]
    assert all(list(arms_) == ["finetune", "replay"] for arms_ in out.values())
    assert out["b"]["replay"]["seen"] == 3 * 2 * 300 and "seen" not in out["a"]["replay"]
    assert len(out["b"]["finetune"]["steps"]) == 3 and out["b"]["finetune"]["steps"][0] == 2 * 10
    # benchmark 1, arm 1: model from stream 1, data order from stream 100 + 10 * 1 + 1
    again = run_continual(
        mlp(scn.n_features, [16], scn.n_outputs, generator=arm_generator(7, 1)),
        scn,
        Replay(16, generator=arm_generator(7, 5)),
        optimizer_fn=sgd(0.05),
        epochs=2,
        batch_size=32,
        generator=arm_generator(7, 111),
    )
    assert out["b"]["replay"]["R"] == again.summary()["R"]
