"""GPM and HLOP: the projected updates leave old tasks' responses alone (oracles), for ANN and
spiking layers, in both projection modes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroplast.continual.gpm import GPM, gpm_basis_update
from neuroplast.continual.hlop import HLOP, hlop_schedule
from neuroplast.continual.scenarios import Task
from neuroplast.continual.strategy import FineTune, ProjectedInputGrad, classification_loss, project_out
from neuroplast.continual.train import train_task


def _low_rank_task(index: int, n: int, dim: int, rank: int, seed: int, n_classes: int = 4) -> Task:
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(rank, dim, generator=g)
    x = torch.randn(n, rank, generator=g) @ basis  # (n, dim), of rank `rank`
    y = torch.randint(0, n_classes, (n,), generator=g)
    return Task(index, f"t{index}", x, y, x.clone(), y.clone(), torch.arange(n_classes))


def _mlp(dim: int, bias: bool, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(dim, 16, bias=bias),
        nn.ReLU(),
        nn.Linear(16, 16, bias=bias),
        nn.ReLU(),
        nn.Linear(16, 4, bias=bias),
    )


def test_gpm_basis_update_first_task_energy_rule():
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=torch.float64))
    S = torch.tensor([4.0, 2.0, 1.0, 0.5] + [0.0] * 6, dtype=torch.float64)
    R = U @ torch.diag(S) @ torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=torch.float64))[0]
    energy = (S**2).cumsum(0) / (S**2).sum()  # 16/21.25, 20/21.25, 21/21.25, 1 = 0.753, 0.941, 0.988, 1
    torch.testing.assert_close(
        energy[:3], torch.tensor([16 / 21.25, 20 / 21.25, 21 / 21.25], dtype=torch.float64)
    )
    # the reference keeps the number of energy prefixes below the threshold
    assert gpm_basis_update(torch.zeros(10, 0, dtype=torch.float64), R, 0.95).shape[1] == 2
    assert gpm_basis_update(torch.zeros(10, 0, dtype=torch.float64), R, 0.98).shape[1] == 2
    assert gpm_basis_update(torch.zeros(10, 0, dtype=torch.float64), R, 0.99).shape[1] == 3
    M = gpm_basis_update(torch.zeros(10, 0, dtype=torch.float64), R, 1.0)
    assert M.shape[1] == 4
    torch.testing.assert_close(M @ M.T @ R, R)  # the full span is kept


def test_gpm_later_task_adds_only_the_new_directions():
    g = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    old = Q[:, :3] @ torch.randn(3, 40, generator=g, dtype=torch.float64)
    M = gpm_basis_update(torch.zeros(12, 0, dtype=torch.float64), old, 1.0)
    new = Q[:, 1:5] @ torch.randn(4, 40, generator=g, dtype=torch.float64)  # shares 2 directions
    M2 = gpm_basis_update(M, new, 1.0)
    assert M2.shape[1] == 5
    torch.testing.assert_close(M2.T @ M2, torch.eye(5, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(M2[:, :3], M)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("mode", ["input", "gradient"])
def test_gpm_leaves_old_task_outputs_unchanged(bias, mode):
    """Oracle: with the whole old input span protected, SGD on a new task changes no old output."""
    old = _low_rank_task(0, 40, 20, 5, seed=0)
    new = _low_rank_task(1, 200, 20, 12, seed=1)
    model = _mlp(20, bias)
    gpm = GPM(model, threshold=1.0, n_samples=300, mode=mode)
    gpm.after_task(old)  # representation of all 40 old samples
    x_old = old.inputs("test")
    with torch.no_grad():
        before = model(x_old)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    train_task(
        model,
        new,
        gpm,
        opt,
        classification_loss(None),
        epochs=3,
        batch_size=10,
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        after = model(x_old)
    moved = sum(
        float((p.detach() - q.detach()).abs().max())
        for p, q in zip(model.parameters(), _mlp(20, bias).parameters(), strict=True)
    )
    assert moved > 0.05  # the network did learn the new task
    torch.testing.assert_close(after, before, atol=2e-5, rtol=0)
    # and the projected weight gradient has no component in the protected input span
    for name, layer in gpm.layers:
        M = gpm.bases_[name]
        g = torch.randn(layer.out_features, M.shape[0])
        assert float((project_out(g, M) @ M).abs().max()) < 1e-5


def test_fine_tune_does_change_old_outputs():
    old = _low_rank_task(0, 40, 20, 5, seed=0)
    new = _low_rank_task(1, 200, 20, 12, seed=1)
    model = _mlp(20, False)
    x_old = old.inputs("test")
    with torch.no_grad():
        before = model(x_old)
    train_task(
        model,
        new,
        FineTune(),
        torch.optim.SGD(model.parameters(), lr=0.05),
        classification_loss(None),
        epochs=3,
        batch_size=10,
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        assert float((model(x_old) - before).abs().max()) > 0.05


@pytest.mark.parametrize("bias", [False, True])
def test_input_projection_equals_gradient_projection(bias):
    torch.manual_seed(0)
    layer = nn.Linear(6, 3, bias=bias)
    n = 6 + bias
    B, _ = torch.linalg.qr(torch.randn(n, 2))
    x = torch.randn(5, 4, 6)  # extra leading axis: time, as in a spiking layer
    target = torch.randn(5, 4, 3)
    hooks = ProjectedInputGrad([("l", layer)], lambda name: B)
    out = layer(x)
    with torch.no_grad():
        torch.testing.assert_close(out, nn.functional.linear(x, layer.weight, layer.bias))  # same value
    ((out - target) ** 2).sum().backward()
    g_input = (
        torch.cat([layer.weight.grad, layer.bias.grad[:, None]], 1) if bias else layer.weight.grad.clone()
    )
    hooks.remove()
    layer.zero_grad()
    ((layer(x) - target) ** 2).sum().backward()
    g_full = torch.cat([layer.weight.grad, layer.bias.grad[:, None]], 1) if bias else layer.weight.grad
    torch.testing.assert_close(g_input, project_out(g_full, B), atol=1e-5, rtol=1e-5)


class _SpikingMLP(nn.Module):
    """Time-first spiking MLP: Linear -> LIF -> Linear, rate read-out."""

    def __init__(self, dim: int, hidden: int, out: int, T: int) -> None:
        super().__init__()
        from neuroplast.neurons.spiking import LIF

        self.T = T
        self.fc1 = nn.Linear(dim, hidden, bias=False)
        self.lif1 = LIF(tau=2.0, threshold=0.5)
        self.fc2 = nn.Linear(hidden, out, bias=False)

    def forward(self, x):
        x = x.unsqueeze(0).expand(self.T, *x.shape)  # (T, B, dim): constant current input
        return self.fc2(self.lif1(self.fc1(x))).mean(0)


@pytest.mark.parametrize("spiking", [False, True])
def test_hlop_protects_old_inputs_on_ann_and_spiking_layers(spiking):
    """Hebbian subspace of the old inputs -> the new task barely moves old layer responses,
    while fine-tuning moves them a lot (relative change of the first layer's output)."""
    if spiking:
        pytest.importorskip("neuroplast.neurons.spiking")
    old = _low_rank_task(0, 300, 20, 4, seed=0)
    new = _low_rank_task(1, 300, 20, 12, seed=1)
    changes = {}
    for name in ("finetune", "hlop"):
        model = _SpikingMLP(20, 24, 4, T=4) if spiking else _mlp(20, False)
        first = model.fc1 if spiking else model[0]
        layers = ["fc1"] if spiking else ["0"]
        if name == "hlop":
            strat = HLOP(
                model,
                [[4]],
                layers=layers,
                lr=0.02,
                time_dim=0 if spiking else None,
                generator=torch.Generator().manual_seed(0),
            )
        else:
            strat = FineTune()
        loss = classification_loss(None)
        strat.before_task(old)
        train_task(
            model,
            old,
            strat,
            torch.optim.SGD(model.parameters(), lr=0.05),
            loss,
            epochs=4,
            batch_size=10,
            generator=torch.Generator().manual_seed(0),
        )
        strat.after_task(old)
        x_old = old.inputs("test")
        with torch.no_grad():
            before = first(x_old)
        strat.before_task(new)
        train_task(
            model,
            new,
            strat,
            torch.optim.SGD(model.parameters(), lr=0.05),
            loss,
            epochs=4,
            batch_size=10,
            generator=torch.Generator().manual_seed(1),
        )
        with torch.no_grad():
            changes[name] = float((first(x_old) - before).norm() / before.norm())
    assert changes["finetune"] > 0.1
    assert changes["hlop"] < 1e-3, changes  # the old inputs lie in the learned subspace: ~1e-7


def test_hlop_modes_agree_and_state_round_trips():
    old = _low_rank_task(0, 100, 20, 4, seed=0)
    new = _low_rank_task(1, 60, 20, 12, seed=1)
    results = []
    for mode in ("input", "gradient"):
        model = _mlp(20, True)
        strat = HLOP(
            model,
            hlop_schedule([4, 6, 6], [2, 2, 2], 2),
            lr=0.02,
            mode=mode,
            generator=torch.Generator().manual_seed(0),
        )
        for task in (old, new):
            strat.before_task(task)
            train_task(
                model,
                task,
                strat,
                torch.optim.SGD(model.parameters(), lr=0.05),
                classification_loss(None),
                epochs=1,
                batch_size=10,
                generator=torch.Generator().manual_seed(task.index),
            )
            strat.after_task(task)
        results.append((model, strat))
    (m1, s1), (m2, s2) = results
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    assert s1.diagnostics()["lateral_neurons"] == {"0": 6, "2": 8, "4": 8}
    fresh = HLOP(_mlp(20, True), hlop_schedule([4, 6, 6], [2, 2, 2], 2), lr=0.02)
    fresh.load_state_dict(s1.state_dict())
    for name, _ in s1.layers:
        torch.testing.assert_close(fresh.subspace(name).weight, s1.subspace(name).weight, rtol=0, atol=0)
    assert fresh.tasks_seen_ == 2


def test_hlop_orth_error_diagnostic_measures_the_frozen_rows():
    # oracle: ||H H^T - I||_F / sqrt(k); 0 for fresh orthonormal rows, 1.25 / sqrt(k) when one
    # of k orthonormal rows is scaled by 1.5 (its Gram diagonal entry becomes 2.25)
    model = _mlp(20, False)
    strat = HLOP(model, [[5, 3, 3]], lr=0.02, generator=torch.Generator().manual_seed(0))
    task = _low_rank_task(0, 30, 20, 4, seed=0)
    strat.before_task(task)
    assert strat.diagnostics()["orth_error"] == {"0": 0.0, "2": 0.0, "4": 0.0}  # nothing frozen yet
    strat.after_task(task)
    orth = strat.diagnostics()["orth_error"]
    assert all(v < 1e-6 for v in orth.values())
    strat.subspace("0").weight[2] *= 1.5
    assert strat.diagnostics()["orth_error"]["0"] == pytest.approx(1.25 / 5**0.5, rel=1e-5)


def test_hlop_schedule_matches_the_reference_recipe():
    sched = hlop_schedule([80, 200, 100], [70, 70, 70], 10, decrement=20, every=3)
    assert sched[0] == [80, 200, 100]
    assert [row[0] for row in sched[1:]] == [70, 70, 50, 50, 50, 30, 30, 30, 10]


def test_bad_layer_and_threshold_arguments():
    model = _mlp(20, False)
    with pytest.raises(ValueError, match="closest names"):
        GPM(model, layers="fc*")
    with pytest.raises(TypeError, match="ReLU"):
        GPM(model, layers="1")
    with pytest.raises(ValueError, match="threshold"):
        GPM(model, threshold=[0.9, 0.9])
    with pytest.raises(ValueError, match="sizes"):
        HLOP(model, [[4, 4]])
