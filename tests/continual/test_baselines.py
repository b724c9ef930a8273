"""EWC, SI, replay buffers, A-GEM and Compose against formulas and properties."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuroplast.continual.agem import AGEM
from neuroplast.continual.ewc import EWC
from neuroplast.continual.replay import EpisodicMemory, Replay, ReservoirBuffer
from neuroplast.continual.scenarios import Task
from neuroplast.continual.si import SI
from neuroplast.continual.strategy import Batch, Compose, FineTune, Strategy, classification_loss, state_bytes


def _task(index: int, n: int = 64, dim: int = 6, seed: int = 0) -> Task:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return Task(index, f"t{index}", x, y, x[:16].clone(), y[:16].clone(), torch.arange(3))


def _batch(n: int, start: int = 0, dim: int = 6, t: int = 0) -> Batch:
    x = torch.arange(start, start + n, dtype=torch.float32)[:, None].repeat(1, dim)
    return Batch(x, torch.arange(start, start + n) % 3, torch.full((n,), t))


# -- EWC ------------------------------------------------------------------------------------------


def test_ewc_fisher_is_the_mean_squared_per_sample_gradient_and_penalty_the_formula():
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    task = _task(0, n=8)
    ewc = EWC(model, lam=3.0, fisher_samples=8, generator=torch.Generator().manual_seed(0))
    ewc.after_task(task)
    # oracle: per-sample gradients one at a time
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(8):
        model.zero_grad()
        nn.functional.cross_entropy(model(task.x_train[i : i + 1]), task.y_train[i : i + 1]).backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad**2 / 8
    for n in expected:
        torch.testing.assert_close(ewc.fishers_[0][n], expected[n])
    with torch.no_grad():
        model.weight.add_(0.1)
    pen = ewc.penalty(_batch(2))
    manual = 0.5 * 3.0 * (expected["weight"] * 0.1**2).sum()
    torch.testing.assert_close(pen, manual)


def test_ewc_keeps_one_term_per_task_or_one_online():
    model = nn.Linear(6, 3)
    sep = EWC(model, lam=1.0, fisher_samples=4)
    onl = EWC(model, lam=1.0, fisher_samples=4, online=True, gamma=0.5)
    for i in range(3):
        sep.after_task(_task(i, seed=i))
        onl.after_task(_task(i, seed=i))
    assert len(sep.fishers_) == 3 and len(onl.fishers_) == 1
    assert sep.memory_bytes() == 3 * onl.memory_bytes()


# -- SI -------------------------------------------------------------------------------------------


def test_si_importance_matches_the_path_integral():
    """One parameter, loss 0.5 w^2, plain SGD: omega = sum_k lr g_k^2 and Omega = omega / (dw^2 + xi)."""
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(2.0)
    si = SI(model, c=1.0, xi=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    si.before_task(None)
    w, omega = 2.0, 0.0
    for _ in range(5):
        opt.zero_grad()
        (0.5 * model.weight**2).sum().backward()
        si.transform_gradients(_batch(1))
        opt.step()
        si.after_step(_batch(1))
        omega += 0.1 * w * w  # -g * dw = -w * (-0.1 w)
        w = w - 0.1 * w
    si.after_task(None)
    expected = omega / ((w - 2.0) ** 2 + 0.5)
    assert float(si.importance_["weight"]) == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        model.weight.fill_(w + 1.0)
    assert float(si.penalty(_batch(1)).detach()) == pytest.approx(expected * 1.0, rel=1e-5)


# -- replay buffers --------------------------------------------------------------------------------


def test_reservoir_is_a_uniform_sample_of_the_stream():
    """Each of N stream items is kept with probability capacity / N (checked over 400 streams)."""
    N, cap, trials = 60, 15, 400
    counts = torch.zeros(N)
    g = torch.Generator().manual_seed(0)
    for _ in range(trials):
        buf = ReservoirBuffer(cap, generator=g)
        for start in range(0, N, 7):  # uneven batches
            buf.add(_batch(min(7, N - start), start, dim=1))
        assert buf.size_ == cap and buf.n_seen_ == N
        kept = buf.x_[:, 0].long()
        assert kept.unique().numel() == cap  # no duplicates
        counts[kept] += 1
    p = cap / N
    sd = math.sqrt(trials * p * (1 - p))
    assert float((counts - trials * p).abs().max()) < 4.5 * sd  # every item near its binomial mean
    early, late = counts[:20].mean(), counts[-20:].mean()
    assert abs(float(early - late)) < 0.1 * trials * p  # no bias towards early or late items


def test_replay_mixes_stored_samples_and_round_trips():
    g = torch.Generator().manual_seed(0)
    rep = Replay(8, replay_size=4, generator=g)
    first = rep.adapt_batch(_batch(5))
    assert first.x.shape[0] == 5  # nothing stored yet
    second = rep.adapt_batch(_batch(5, start=100, t=1))
    assert second.x.shape[0] == 9 and set(second.t[5:].tolist()) == {0}
    clone = Replay(8, replay_size=4, generator=torch.Generator())
    clone.load_state_dict(rep.state_dict())
    a, b = rep.adapt_batch(_batch(3, 200)), clone.adapt_batch(_batch(3, 200))
    assert torch.equal(a.x, b.x) and torch.equal(rep.buffer.x_, clone.buffer.x_)
    assert rep.memory_bytes() == 8 * 6 * 4 + 2 * 8 * 8


def test_buffers_need_room_and_one_input_shape():
    with pytest.raises(ValueError, match="at least one sample"):
        Replay(0)
    with pytest.raises(ValueError, match="at least one sample"):
        AGEM(nn.Linear(6, 3), memory_size=0)
    buf = ReservoirBuffer(4)
    buf.add(_batch(2))
    with pytest.raises(ValueError, match=r"samples of shape \(7,\) do not match the buffer's \(6,\)"):
        buf.add(_batch(2, dim=7))
    with pytest.raises(ValueError, match="empty"):
        ReservoirBuffer(3).sample(2)


def test_episodic_memory_shares_the_budget_equally():
    mem = EpisodicMemory(12, generator=torch.Generator().manual_seed(0))
    for i in range(3):
        mem.add_task(_task(i, seed=i))
    assert mem.size_ == 12
    assert torch.bincount(mem.t_[: mem.size_]).tolist() == [4, 4, 4]
    mem2 = EpisodicMemory(2)
    mem2.add_task(_task(0))
    mem2.add_task(_task(1))
    with pytest.raises(ValueError, match="no room"):
        mem2.add_task(_task(2))


# -- A-GEM ----------------------------------------------------------------------------------------


def test_agem_projection_rule():
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    agem = AGEM(model, memory_size=32, ref_batch_size=32, generator=torch.Generator().manual_seed(0))
    old = _task(0, seed=0)
    agem.after_task(old)
    loss_fn = classification_loss(None)
    ref = agem.memory.sample(32, torch.Generator().manual_seed(9))

    def grads(batch: Batch) -> torch.Tensor:
        model.zero_grad()
        loss_fn(model, batch).backward()
        return torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()])

    g_ref = grads(ref)

    def set_grads(flat: torch.Tensor) -> None:
        offset = 0
        for p in model.parameters():
            p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()

    # a current gradient that opposes the memory gradient
    g = -g_ref + 0.5 * torch.randn(g_ref.shape, generator=torch.Generator().manual_seed(1)) * g_ref.norm()
    assert float(g @ g_ref) < 0
    set_grads(g)
    agem.generator = torch.Generator().manual_seed(9)  # the same reference batch as above
    agem.transform_gradients(ref)
    g_new = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    expected = g - (g @ g_ref) / (g_ref @ g_ref) * g_ref
    torch.testing.assert_close(g_new, expected, atol=1e-5, rtol=1e-5)
    assert abs(float(g_new @ g_ref)) < 1e-4 * float(g.norm() * g_ref.norm())  # now orthogonal
    # an agreeing gradient is left alone
    g2 = g_ref + 0.1 * g
    assert float(g2 @ g_ref) > 0
    set_grads(g2)
    agem.generator = torch.Generator().manual_seed(9)
    agem.transform_gradients(ref)
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in model.parameters()]), g2)
    assert agem.diagnostics()["projected_fraction"] == 0.5


# -- Compose and the base protocol ------------------------------------------------------------------


class _Tag(Strategy):
    def __init__(self, tag: str, log: list) -> None:
        self.tag, self.log, self.name = tag, log, tag

    def adapt_batch(self, batch):
        self.log.append(self.tag)
        return Batch(batch.x + 1, batch.y, batch.t)

    def penalty(self, batch):
        return torch.tensor(1.0 if self.tag == "a" else 2.0)

    def state_dict(self):
        return {"tag": self.tag}

    def load_state_dict(self, state):
        self.tag = state["tag"]


def test_compose_chains_adapters_adds_penalties_and_nests_state():
    log: list = []
    c = Compose(_Tag("a", log), _Tag("b", log))
    out = c.adapt_batch(_batch(2))
    assert log == ["a", "b"] and torch.equal(out.x, _batch(2).x + 2)
    assert float(c.penalty(out)) == 3.0
    assert c.state_dict() == {"0": {"tag": "a"}, "1": {"tag": "b"}} and c.name == "a+b"
    with pytest.raises(ValueError, match="expected keys"):
        c.load_state_dict({"0": {}})
    with pytest.raises(TypeError, match="Strategy"):
        Compose(FineTune(), object())


def test_fine_tune_is_stateless_and_state_bytes_counts_tensors():
    assert FineTune().state_dict() == {} and FineTune().memory_bytes() == 0
    with pytest.raises(ValueError, match="no state"):
        FineTune().load_state_dict({"x": 1})
    assert state_bytes({"a": torch.zeros(3), "b": [torch.zeros(2, dtype=torch.float64), 5]}) == 12 + 16


def test_head_mask_loss_rejects_task_ids_out_of_range():
    loss = classification_loss(torch.ones(2, 3, dtype=torch.bool))
    model = nn.Linear(6, 3)
    with pytest.raises(ValueError, match=r"task ids must lie in 0..1"):
        loss(model, _batch(2, t=5))


def test_strategies_refuse_a_task_with_another_input_shape():
    model = nn.Linear(6, 3)
    ewc = EWC(model, lam=1.0, fisher_samples=4)
    ewc.after_task(_task(0))
    x = torch.zeros(8, 1, 7)
    other = Task(
        1,
        "wide",
        x,
        torch.zeros(8, dtype=torch.int64),
        x.clone(),
        torch.zeros(8, dtype=torch.int64),
        torch.arange(3),
    )
    with pytest.raises(ValueError, match=r"task 'wide' has inputs of shape \(1, 7\).*\(6,\)"):
        ewc.after_task(other)
