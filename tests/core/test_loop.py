"""fit / evaluate: event order, step and epoch counting, the NaN guard, evaluation metrics."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from neuroplast.core import evaluate, fit
from neuroplast.core.loop import progress_enabled


def problem(n_batches=3, batch=4):
    gen = torch.Generator().manual_seed(0)
    data = [(torch.randn(batch, 3, generator=gen), torch.randint(0, 2, (batch,), generator=gen))
            for _ in range(n_batches)]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    return model, data, torch.optim.SGD(model.parameters(), lr=0.1)


class Log:
    def __init__(self):
        self.events = []

    def on_batch_start(self, s):
        self.events.append(("start", s.step, s.epoch, s.batch_index))

    def after_backward(self, s):
        grads_present = all(p.grad is not None for p in s.model.parameters())
        self.events.append(("backward", s.step, grads_present))

    def after_step(self, s):
        self.events.append(("step", s.step))

    def on_epoch_end(self, s):
        self.events.append(("epoch_end", s.epoch))


def test_event_order_in_epochs_mode():
    model, data, opt = problem(n_batches=2)
    log = Log()
    result = fit(model, data, F.cross_entropy, opt, epochs=2, callbacks=[log], progress=False)
    assert log.events == [
        ("start", 0, 0, 0), ("backward", 0, True), ("step", 0),
        ("start", 1, 0, 1), ("backward", 1, True), ("step", 1),
        ("epoch_end", 1),
        ("start", 2, 1, 0), ("backward", 2, True), ("step", 2),
        ("start", 3, 1, 1), ("backward", 3, True), ("step", 3),
        ("epoch_end", 2),
    ]
    assert result["steps"] == 4 and result["epochs"] == 2 and len(result["losses"]) == 4


def test_steps_cycle_through_data_and_match_a_manual_loop():
    model, data, opt = problem(n_batches=3)
    log = Log()
    result = fit(model, data, F.cross_entropy, opt, steps=7, callbacks=[log], progress=False)
    assert result["steps"] == 7 and result["epochs"] == 2  # 7 = 3 + 3 + 1: two full passes
    assert [e for e in log.events if e[0] == "epoch_end"] == [("epoch_end", 1), ("epoch_end", 2)]

    ref, _, ref_opt = problem(n_batches=3)  # oracle: the same steps written out by hand
    losses = []
    for i in range(7):
        x, y = data[i % 3]
        ref_opt.zero_grad()
        loss = F.cross_entropy(ref(x), y)
        loss.backward()
        ref_opt.step()
        losses.append(loss.item())
    assert result["losses"] == losses
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p, q)


def test_nan_guard_names_the_step():
    model, data, opt = problem(n_batches=3)
    calls = {"n": 0}

    def loss_fn(out, y):
        calls["n"] += 1
        loss = F.cross_entropy(out, y)
        return loss * float("nan") if calls["n"] == 3 else loss

    with pytest.raises(FloatingPointError, match=r"nan at step 2 \(epoch 0, batch 2\)"):
        fit(model, data, loss_fn, opt, epochs=1, progress=False)
    with pytest.raises(FloatingPointError, match="inf"):
        fit(model, data, lambda o, y: F.cross_entropy(o, y) * float("inf"), opt, steps=1, progress=False)


def test_callback_can_stop_and_arguments_are_checked():
    model, data, opt = problem(n_batches=5)

    class Stop:
        def after_step(self, s):
            s.stop = s.step >= 1

    result = fit(model, data, F.cross_entropy, opt, epochs=3, callbacks=[Stop()], progress=False)
    assert result["steps"] == 2 and result["epochs"] == 0
    with pytest.raises(ValueError, match="exactly one"):
        fit(model, data, F.cross_entropy, opt, progress=False)
    with pytest.raises(ValueError, match="exactly one"):
        fit(model, data, F.cross_entropy, opt, epochs=1, steps=1, progress=False)
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        fit(model, data, F.cross_entropy, opt, steps=-1, progress=False)
    with pytest.raises(TypeError, match="none of the event methods"):
        fit(model, data, F.cross_entropy, opt, steps=1, callbacks=[object()], progress=False)
    with pytest.raises(TypeError, match=r"\(x, y\) pair"):
        fit(model, [torch.randn(2, 3)], F.cross_entropy, opt, steps=1, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, [], F.cross_entropy, opt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="one-shot iterator"):
        fit(model, iter(data), F.cross_entropy, opt, steps=8, progress=False)


def test_evaluate_accuracy_and_callable_metric():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0], [5.0, 0.0]])
    y = torch.tensor([0, 1, 1, 1, 0])
    data = [(x[:2], y[:2]), (x[2:], y[2:])]  # uneven batches: weighted by size
    assert evaluate(model, data) == pytest.approx(4 / 5)
    mse = evaluate(model, data, metric=lambda out, t: ((out.argmax(-1) - t) ** 2).float().mean())
    assert mse == pytest.approx(1 / 5)
    model.train()
    evaluate(model, data)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="metric"):
        evaluate(model, data, metric="f1")


def test_progress_quiet_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled(True)
    monkeypatch.setenv("CI", "")
    assert progress_enabled(True) and not progress_enabled(False)
