"""A short, explicit train-over-tasks loop that fills the accuracy matrix.

``train_task`` is the whole inner loop (shuffle, batch, adapt, loss + penalty, backward,
transform gradients, step, after-step); ``run_continual`` trains the tasks of a scenario in
order, evaluates every task after each one, and records ``R`` (percent), the wall time per task
and the strategy's memory. After each task the partial result can be saved (``save_to``) or
checkpointed (``on_task_end``), and a run can resume from a ``ContinualResult``: a run that
fails keeps the accuracy matrix of its finished tasks.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from neuroplast.continual.scenarios import JointTask, Scenario, Task, permuted, split
from neuroplast.continual.strategy import Batch, FineTune, Strategy, classification_loss

__all__ = [
    "train_task",
    "evaluate_task",
    "evaluate_tasks",
    "ContinualResult",
    "run_continual",
    "sgd",
    "Experiment",
    "results_table",
    "split_timings",
    "arm_generator",
    "mnist_benchmarks",
    "benchmark_setting",
    "run_arms",
    "run_benchmarks",
    "finish_arms",
]

LossFn = Callable[[nn.Module, Batch], Tensor]


def sgd(lr: float = 0.01, momentum: float = 0.0) -> Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]:
    """``optimizer_fn`` making a fresh ``torch.optim.SGD`` per task (GPM protocol: lr 0.01, no momentum)."""
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


def _check_input_shape(model_shape: tuple[int, ...] | None, task: Any) -> None:
    if model_shape is not None and tuple(task.input_shape) != tuple(model_shape):
        raise ValueError(
            f"task {task.name!r} has inputs of shape {tuple(task.input_shape)} but the run started "
            f"with inputs of shape {tuple(model_shape)}"
        )


def train_task(
    model: nn.Module,
    task: Task | JointTask,
    strategy: Strategy,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    epochs: int = 1,
    batch_size: int = 10,
    generator: torch.Generator | None = None,
) -> int:
    """Train ``model`` on ``task`` for ``epochs`` passes in shuffled mini-batches; returns the step count.

    Calls the strategy's per-batch hooks (not ``before_task`` / ``after_task``). A non-finite
    loss raises FloatingPointError naming the task, epoch and step.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: expected a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    model.train()
    steps = 0
    n = task.n_train
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            batch = strategy.adapt_batch(task.batch("train", order[start : start + batch_size]))
            loss = loss_fn(model, batch)
            penalty = strategy.penalty(batch)
            total = loss if penalty is None else loss + penalty
            if not torch.isfinite(total):
                raise FloatingPointError(
                    f"loss is {float(total.detach())} on task {task.name!r}, epoch {epoch}, step {steps} "
                    f"(task loss {float(loss.detach())}); lower the learning rate or the penalty"
                )
            optimizer.zero_grad(set_to_none=False)
            total.backward()
            strategy.transform_gradients(batch)
            optimizer.step()
            strategy.after_step(batch)
            steps += 1
    return steps


@torch.no_grad()
def evaluate_task(model: nn.Module, task: Task, head: Tensor | None = None, batch_size: int = 1000) -> float:
    """Test accuracy (percent) of ``model`` on ``task``; ``head``: the output units to choose among."""
    was_training = model.training
    model.eval()
    correct = 0
    try:
        for start in range(0, task.n_test, batch_size):
            idx = torch.arange(start, min(start + batch_size, task.n_test))
            logits = model(task.inputs("test", idx))
            if head is not None:
                logits = logits.masked_fill(~head.to(logits.device), float("-inf"))
            correct += int((logits.argmax(-1) == task.labels("test", idx).to(logits.device)).sum())
    finally:
        model.train(was_training)
    return 100.0 * correct / max(task.n_test, 1)


def evaluate_tasks(model: nn.Module, scenario: Scenario, tasks: Iterable[int] | None = None) -> Tensor:
    """Accuracies (percent) on the given task ids (default all), a float64 tensor (NaN where skipped)."""
    heads = scenario.head_mask()
    out = torch.full((len(scenario),), math.nan, dtype=torch.float64)
    for j in range(len(scenario)) if tasks is None else tasks:
        out[j] = evaluate_task(model, scenario[j], heads[j] if scenario.multi_head else None)
    return out


@dataclass
class ContinualResult:
    """What ``run_continual`` measured: ``R`` (T, T) percent (NaN where not trained yet), per-task
    train seconds (training + the strategy's after-task work), steps, strategy memory (bytes)
    and the strategy's diagnostics after each task."""

    R: Tensor
    seconds: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    memory_bytes: list[int] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    joint: bool = False

    @classmethod
    def empty(cls, n_tasks: int, joint: bool = False) -> ContinualResult:
        return cls(torch.full((n_tasks, n_tasks), math.nan, dtype=torch.float64), joint=joint)

    @property
    def tasks_done(self) -> int:
        return len(self.seconds)

    def summary(self) -> dict[str, Any]:
        """ACC, BWT, forgetting (points), the matrix, times and memory, JSON-ready."""
        from neuroplast.metrics.continual import continual_summary

        if self.joint:  # one training task on the union: only the last row exists
            last = self.R[-1]
            done = bool(torch.isfinite(last).all())
            out: dict[str, Any] = {
                "tasks_done": len(last) if done else 0,
                "acc": float(last.mean()) if done else None,
                "bwt": None,
                "forgetting": None,
                "fwt": None,
            }
        else:
            out = continual_summary(self.R)
        out.update(
            {
                "R": [
                    [None if not math.isfinite(v) else round(v, 4) for v in row] for row in self.R.tolist()
                ],
                "seconds_per_task": [round(s, 4) for s in self.seconds],
                # joint trains all T tasks as one: its time is spread over the T tasks it covers
                "mean_seconds_per_task": (
                    sum(self.seconds) / (self.R.shape[0] if self.joint else len(self.seconds))
                )
                if self.seconds
                else None,
                "steps": list(self.steps),
                "memory_bytes": self.memory_bytes[-1] if self.memory_bytes else 0,
                "diagnostics": list(self.diagnostics),
            }
        )
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "R": self.R.clone(),
            "seconds": list(self.seconds),
            "steps": list(self.steps),
            "memory_bytes": list(self.memory_bytes),
            "diagnostics": json.dumps(self.diagnostics),
            "joint": self.joint,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ContinualResult:
        return cls(
            state["R"].to(torch.float64).clone(),
            [float(s) for s in state["seconds"]],
            [int(s) for s in state["steps"]],
            [int(m) for m in state["memory_bytes"]],
            json.loads(state["diagnostics"]),
            bool(state.get("joint", False)),
        )

    def save_json(self, path: str | os.PathLike[str]) -> None:
        """Write ``summary()`` atomically (temp file, then ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.summary(), indent=1))
        os.replace(tmp, path)


def run_continual(
    model: nn.Module,
    scenario: Scenario,
    strategy: Strategy | None = None,
    *,
    optimizer_fn: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
    epochs: int = 1,
    batch_size: int = 10,
    generator: torch.Generator | None = None,
    loss_fn: LossFn | None = None,
    result: ContinualResult | None = None,
    on_task_end: Callable[[int, ContinualResult], None] | None = None,
    save_to: str | os.PathLike[str] | None = None,
    joint: bool = False,
) -> ContinualResult:
    """Train ``model`` on the tasks of ``scenario`` in order with ``strategy``; fill ``R``.

    - ``optimizer_fn(params)`` makes a fresh optimizer per task over the parameters that
      require grad (default ``sgd(0.01)``); ``loss_fn`` defaults to ``classification_loss``
      with the scenario's heads.
    - ``result``: resume after ``result.tasks_done`` tasks (load the model, strategy and
      generator state first); ``on_task_end(i, result)`` runs after task i (checkpoint there);
      ``save_to``: a JSON file rewritten after every task, so a failing run keeps its matrix.
    - ``joint=True``: one training task, the union of all tasks (the upper bound); its row is
      the last row of R and BWT is undefined.
    """
    strategy = FineTune() if strategy is None else strategy
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy: expected a continual.Strategy, got {type(strategy).__name__}")
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario: expected a continual.scenarios.Scenario, got {type(scenario).__name__}")
    optimizer_fn = sgd() if optimizer_fn is None else optimizer_fn
    loss_fn = (
        classification_loss(scenario.head_mask() if scenario.multi_head else None)
        if loss_fn is None
        else loss_fn
    )
    T = len(scenario)
    result = ContinualResult.empty(T, joint=joint) if result is None else result
    if tuple(result.R.shape) != (T, T):
        raise ValueError(
            f"result: its accuracy matrix is {tuple(result.R.shape)}, the scenario has {T} tasks"
        )
    if result.joint != joint:
        raise ValueError(f"result: it was made with joint={result.joint}, this call has joint={joint}")
    plan: list[tuple[int, Task | JointTask]] = (
        [(T - 1, scenario.joint())] if joint else list(enumerate(scenario))
    )
    start = result.tasks_done
    for i, task in plan[start:]:
        _check_input_shape(scenario.input_shape, task)
        try:
            t0 = time.perf_counter()
            strategy.before_task(task)
            optimizer = optimizer_fn([p for p in model.parameters() if p.requires_grad])
            steps = train_task(model, task, strategy, optimizer, loss_fn, epochs, batch_size, generator)
            strategy.after_task(task)
            seconds = time.perf_counter() - t0
            result.R[i] = evaluate_tasks(model, scenario)
        except Exception as exc:
            if save_to is not None:
                exc.add_note(
                    f"the accuracy matrix of the {result.tasks_done} finished task(s) is in {save_to}"
                )
            raise
        result.seconds.append(seconds)
        result.steps.append(steps)
        result.memory_bytes.append(strategy.memory_bytes())
        result.diagnostics.append(strategy.diagnostics())
        if save_to is not None:
            result.save_json(save_to)
        if on_task_end is not None:
            on_task_end(i, result)
    return result


class Experiment:
    """Several (benchmark, strategy) arms run one after another, resumable after any task.

    ``run`` is anything with the runner's ``restore()``, ``should_checkpoint(step)``,
    ``checkpoint(step, state)`` and ``log(step, **metrics)`` (a study's ``Run``), or None.
    ``restore()`` is called once, here. ``threads``: torch intra-op threads while an arm trains
    (restored after; None leaves the setting alone): small-batch MLP steps are latency-bound, and
    one thread is several times faster than two on a busy machine. Steps count SGD steps over
    all arms; after each task the arm's model, strategy, generator and partial result are
    checkpointed when the runner asks for a checkpoint in that task's range of steps, and
    finished arms keep their summary.

    ``arm(key, model, scenario, strategy, generator, extra=None, **run_continual_kwargs)``
    returns the arm's ``ContinualResult.summary()`` (updated with ``extra(model, strategy)``,
    measured once when the arm finishes); build ``model`` and ``strategy`` fresh for each call
    (a resumed arm loads its state into them).
    """

    def __init__(self, run: Any = None, threads: int | None = 1) -> None:
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads: expected a positive int or None, got {threads!r}")
        self.run = run
        self.threads = threads
        restored = run.restore() if run is not None else None
        if restored is None:
            self.step, self.done, self.current = 0, {}, None
        else:
            step, state = restored
            self.step = int(step)
            self.done = dict(state["done"])
            self.current = state.get("current")

    def arm(
        self,
        key: str,
        model: nn.Module,
        scenario: Scenario,
        strategy: Strategy | None,
        generator: torch.Generator,
        extra: Callable[[nn.Module, Strategy], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if key in self.done:
            return self.done[key]
        strategy = FineTune() if strategy is None else strategy
        result = None
        cur = self.current
        if cur is not None and cur["key"] == key:
            model.load_state_dict(cur["model"])
            strategy.load_state_dict(cur["strategy"])
            generator.set_state(cur["generator"])
            result = ContinualResult.from_state(cur["result"])

        def on_task_end(i: int, res: ContinualResult) -> None:
            first = self.step + 1
            self.step += res.steps[-1]
            if self.run is None:
                return
            row = res.R[i]
            done = row[: i + 1] if not res.joint else row
            self.run.log(
                self.step, arm=key, task=i, acc=float(done.mean())
            )  # no wall times: deterministic log
            if any(self.run.should_checkpoint(s) for s in range(first, self.step + 1)):
                self.run.checkpoint(
                    self.step,
                    {
                        "done": self.done,
                        "current": {
                            "key": key,
                            "model": model.state_dict(),
                            "strategy": strategy.state_dict(),
                            "generator": generator.get_state(),
                            "result": res.state_dict(),
                        },
                    },
                )

        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            res = run_continual(
                model,
                scenario,
                strategy,
                generator=generator,
                result=result,
                on_task_end=on_task_end,
                **kwargs,
            )
        finally:
            torch.set_num_threads(before)
        summary = res.summary()
        if extra is not None:
            summary.update(extra(model, strategy))
        self.done[key] = summary
        self.current = None
        return summary


TIME_KEYS = ("seconds_per_task", "mean_seconds_per_task")


def results_table(benches: dict[str, dict[str, dict[str, Any]]], times: bool = True) -> list[dict[str, Any]]:
    """Rows (benchmark, arm, ACC, BWT, forgetting, seconds per task, time ratio to the benchmark's
    ``"finetune"`` arm measured in the same run, strategy memory) from ``{bench: {arm: summary}}``.

    ``times=False`` leaves the two wall-clock columns out (a study's summary must not depend on
    the machine: its times go to ``split_timings`` and ``run.timing``)."""
    rows = []
    for bench, arms in benches.items():
        base = arms.get("finetune", {}).get("mean_seconds_per_task")
        for arm, s in arms.items():
            t = s.get("mean_seconds_per_task")
            row = {
                "benchmark": bench,
                "arm": arm,
                "acc": s.get("acc"),
                "bwt": s.get("bwt"),
                "forgetting": s.get("forgetting"),
                "seconds_per_task": t,
                "time_vs_finetune": (t / base) if (base and t is not None) else None,
                "memory_bytes": s.get("memory_bytes"),
            }
            if not times:
                del row["seconds_per_task"], row["time_vs_finetune"]
            rows.append(row)
    return rows


def split_timings(
    benches: dict[str, dict[str, dict[str, Any]]],
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
    """``({bench: {arm: summary without wall-clock times}}, {"bench/arm": times})``.

    The times of an arm: ``seconds_per_task``, ``mean_seconds_per_task`` and ``time_vs_finetune``
    (ratio to the benchmark's ``"finetune"`` arm in the same run); the summaries are copies.
    """
    results: dict[str, dict[str, dict[str, Any]]] = {}
    timings: dict[str, dict[str, Any]] = {}
    for bench, arms in benches.items():
        base = arms.get("finetune", {}).get("mean_seconds_per_task")
        results[bench] = {}
        for arm, s in arms.items():
            results[bench][arm] = {k: v for k, v in s.items() if k not in TIME_KEYS}
            t = s.get("mean_seconds_per_task")
            timings[f"{bench}/{arm}"] = {
                "seconds_per_task": s.get("seconds_per_task"),
                "mean_seconds_per_task": t,
                "time_vs_finetune": (t / base) if (base and t is not None) else None,
            }
    return results, timings


# -- benchmark runs: the arms of a continual study ------------------------------------------------
StrategyFactory = Callable[[nn.Module], Strategy | None]


def arm_generator(seed: int, i: int) -> torch.Generator:
    """A fresh CPU generator for stream ``i`` of a run with seed ``seed`` (seeded ``seed * 1009 + i``).

    Studies give each model initialisation, strategy and data order its own stream, so adding an
    arm leaves the draws of the others unchanged."""
    return torch.Generator().manual_seed(seed * 1009 + i)


def mnist_benchmarks(
    seed: int,
    *,
    n_tasks: int = 10,
    source: Any = "auto",
    train_per_task: int = 0,
    test_per_task: int = 0,
    multi_head: bool = False,
    split_tasks: int = 5,
    split_source: Any = "mnist-5000",
    normalize: tuple[float, float] | None = None,
) -> tuple[Scenario, Scenario]:
    """The two standard benchmarks of the continual studies: ``(permuted, split)``.

    ``permuted(n_tasks, source, seed, multi_head)`` with ``train_per_task`` / ``test_per_task``
    images per task (0: every image), and the task-incremental ``split(split_tasks,
    split_source, seed)`` (one two-class head per task); ``normalize=(mean, std)`` standardizes
    the pixels of both (None: pixels in [0, 1])."""
    pm = permuted(
        n_tasks,
        source=source,
        seed=seed,
        multi_head=multi_head,
        train_per_task=train_per_task or None,
        test_per_task=test_per_task or None,
        normalize=normalize,
    )
    sp = split(split_tasks, source=split_source, seed=seed, incremental="task", normalize=normalize)
    return pm, sp


def benchmark_setting(
    pmnist: Scenario, split_mnist: Scenario, *, lr: float, epochs: int, batch_size: int
) -> dict[str, Any]:
    """The ``"setting"`` entry of a study summary for the ``mnist_benchmarks`` pair: both scenarios'
    ``describe()``, the image source of the permuted benchmark and the main training settings."""
    return {
        "pmnist": pmnist.describe(),
        "split": split_mnist.describe(),
        "source": pmnist.source,
        "lr": lr,
        "epochs": epochs,
        "batch_size": batch_size,
    }


def run_arms(
    experiment: Experiment,
    bench: str,
    scenario: Scenario,
    arms: Mapping[str, StrategyFactory],
    model_fn: Callable[[], nn.Module],
    generator_fn: Callable[[int], torch.Generator],
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    extras: Mapping[str, Callable[[nn.Module, Strategy], dict[str, Any]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every arm of one benchmark through ``experiment``; returns ``{arm: summary}``.

    Arm number ``a`` (in the order of ``arms``) trains a fresh ``model_fn()`` (build it from a
    fixed generator, so every arm starts from the same weights) with ``arms[name](model)`` (None:
    fine-tuning), data order ``generator_fn(a)``, plain SGD at ``lr`` (``sgd(lr)``), ``epochs`` and
    ``batch_size``, under the experiment key ``"{bench}/{name}"``. The arm named ``"joint"``
    trains on the union of the tasks (the upper bound). ``extras[name]``: the ``extra`` callback
    of ``Experiment.arm`` for that arm."""
    extras = {} if extras is None else extras
    out: dict[str, dict[str, Any]] = {}
    for a, (arm, make) in enumerate(arms.items()):
        model = model_fn()
        out[arm] = experiment.arm(
            f"{bench}/{arm}",
            model,
            scenario,
            make(model),
            generator_fn(a),
            optimizer_fn=sgd(lr),
            epochs=epochs,
            batch_size=batch_size,
            joint=arm == "joint",
            extra=extras.get(arm),
        )
    return out


def run_benchmarks(
    experiment: Experiment,
    benches: Sequence[tuple[str, Scenario, int, float]],
    arms: Callable[[Scenario], Mapping[str, StrategyFactory]],
    model_fn: Callable[[Scenario, torch.Generator], nn.Module],
    seed: int,
    *,
    batch_size: int,
    extras: Mapping[str, Callable[[nn.Module, Strategy], dict[str, Any]]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``run_arms`` on each ``(bench, scenario, epochs, lr)`` of ``benches``: ``{bench: {arm: summary}}``.

    The seeding convention of the continual studies: on benchmark number ``b`` every arm's model
    is ``model_fn(scenario, arm_generator(seed, b))`` (the same initial weights for all arms of a
    benchmark) and arm number ``a`` draws its data order from ``arm_generator(seed, 100 + 10 * b +
    a)``. ``arms(scenario)``: the arms of that benchmark; ``extras["bench/arm"]``: an arm's
    ``extra`` callback."""
    extras = {} if extras is None else extras
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for b, (bench, scenario, epochs, lr) in enumerate(benches):
        named = arms(scenario)
        out[bench] = run_arms(
            experiment,
            bench,
            scenario,
            named,
            lambda scenario=scenario, b=b: model_fn(scenario, arm_generator(seed, b)),
            lambda a, b=b: arm_generator(seed, 100 + 10 * b + a),
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            extras={arm: extras[f"{bench}/{arm}"] for arm in named if f"{bench}/{arm}" in extras},
        )
    return out


def finish_arms(out: dict[str, Any], benches: Iterable[str], run: Any = None) -> list[dict[str, Any]]:
    """Move the wall-clock times of the arms out of a study summary; returns the results table.

    ``out[bench]`` (``{arm: summary}``, for each of ``benches`` present in ``out``) is replaced by
    the summaries without times (``split_timings``), the times go to ``run.timing("arms", ...)``
    (anything with the runner's ``timing(name, value)``; skipped when ``run`` is None), and
    ``out["table"]`` is set to ``results_table(..., times=False)``, so the summary stays
    deterministic given the seed."""
    results, times = split_timings({b: out[b] for b in benches if b in out})
    out.update(results)
    if run is not None:
        run.timing("arms", times)
    out["table"] = results_table(results, times=False)
    return out["table"]
