"""Conformance cases for the continual-learning strategies and the Oja subspace module.

Each strategy is exercised by one task end (``after_task``) on a small task, so its state is
non-trivial before the state_dict round trip; attach/detach checks that ``remove()`` leaves the
model bit-identical (no hooks left behind); determinism and dtype run a forward pass with the
strategy attached.
"""

from __future__ import annotations

import torch
from torch import nn

from neuroplast.continual.agem import AGEM
from neuroplast.continual.clnp import CLNP
from neuroplast.continual.ewc import EWC
from neuroplast.continual.gpm import GPM
from neuroplast.continual.hlop import HLOP
from neuroplast.continual.replay import Replay
from neuroplast.continual.scenarios import Task
from neuroplast.continual.si import SI
from neuroplast.continual.strategy import Batch, Compose
from neuroplast.plasticity.hebbian import OjaSubspace
from neuroplast.testing import ConformanceCase


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))


def _input() -> torch.Tensor:
    return torch.randn(5, 6, generator=torch.Generator().manual_seed(1))


def _task() -> Task:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, 6, generator=g)
    y = torch.randint(0, 4, (32,), generator=g)
    return Task(0, "t0", x, y, x[:8].clone(), y[:8].clone(), torch.arange(4))


def _end_task(strategy) -> None:  # noqa: ANN001
    task = _task()
    strategy.before_task(task)
    strategy.after_task(task)


def _replay_exercise(rep: Replay) -> None:
    b = _task().batch("train", torch.arange(12))
    rep.adapt_batch(Batch(b.x, b.y, b.t))


def _si_exercise(si: SI) -> None:
    si.before_task(None)
    for p in si.model.parameters():
        p.grad = torch.ones_like(p)
    si.transform_gradients(None)
    with torch.no_grad():
        for p in si.model.parameters():
            p.sub_(0.1)
    si.after_step(None)
    si.after_task(None)


def _oja() -> OjaSubspace:
    sub = OjaSubspace(6)
    sub.add_neurons(3, generator=torch.Generator().manual_seed(0))
    return sub


CASES = [
    ConformanceCase(
        "oja_subspace",
        _oja,
        input_factory=_input,
        exercise=lambda s: (s.update(_input()), s.freeze(), s.add_neurons(1)),
    ),
    ConformanceCase("cl_ewc", _mlp, lambda m: EWC(m, lam=1.0, fisher_samples=8), _input, exercise=_end_task),
    ConformanceCase("cl_si", _mlp, lambda m: SI(m), _input, exercise=_si_exercise),
    ConformanceCase(
        "cl_replay",
        _mlp,
        lambda m: Replay(10, generator=torch.Generator().manual_seed(0)),
        _input,
        exercise=_replay_exercise,
    ),
    ConformanceCase(
        "cl_agem",
        _mlp,
        lambda m: AGEM(m, memory_size=10, generator=torch.Generator().manual_seed(0)),
        _input,
        exercise=_end_task,
    ),
    ConformanceCase("cl_gpm", _mlp, lambda m: GPM(m, threshold=0.9), _input, exercise=_end_task),
    ConformanceCase(
        "cl_hlop",
        _mlp,
        lambda m: HLOP(m, [[3, 3, 3]], generator=torch.Generator().manual_seed(0)),
        _input,
        exercise=_end_task,
    ),
    ConformanceCase(
        "cl_clnp", _mlp, lambda m: CLNP(m, ["0", "2", "4"], ["1", "3"], n_val=16), _input, exercise=_end_task
    ),
    ConformanceCase(
        "cl_compose",
        _mlp,
        lambda m: Compose(GPM(m, threshold=0.9), Replay(10, generator=torch.Generator().manual_seed(0))),
        _input,
        exercise=lambda c: (_end_task(c), _replay_exercise(c.strategies[1])),
    ),
]
