"""Tests for neuroplast.structure.recycle: ReDo recycling, DrM perturbation and perturb_factor.

Oracles: PyTorch's own ``reset_parameters`` under ``torch.manual_seed`` (the fresh init), the network
with the recycled neurons ablated by a hook (the function must not change), and the formulas.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from neuroplast.structure import RecycleReport, fresh_parameters, perturb, perturb_factor, recycle_dormant

MASK = torch.tensor([True, False, True, False, False, False, False, True])


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def _cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 3)
    )


def _train(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, steps: int = 3) -> None:
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def _ablated_output(
    model: nn.Module, site: str, mask: torch.Tensor, x: torch.Tensor, axis: int
) -> torch.Tensor:
    """Oracle: the model's output with the masked neurons of ``site`` forced to 0."""
    keep = (~mask).float()
    shape = [1, -1, 1, 1] if axis == 1 else [1, -1]  # (B, C, H, W) conv maps or (B, N) features

    def hook(module, inputs, out):
        return out * keep.view(shape)

    handle = dict(model.named_modules())[site].register_forward_hook(hook)
    try:
        with torch.no_grad():
            return model(x)
    finally:
        handle.remove()


def _oracle_fresh(layer: nn.Module, seed: int) -> nn.Module:
    fresh = copy.deepcopy(layer)
    torch.manual_seed(seed)
    fresh.reset_parameters()
    return fresh


@pytest.mark.parametrize(
    ("site", "incoming", "outgoing"),
    [
        ("1", "0", "2"),
        ("0", "0", "2"),
        ("3", "2", "4"),
        ("2", "2", "4"),
    ],  # ReDo (ReLU) and DrM (Linear) sites
)
def test_recycle_mlp_rows_columns_and_adam_state(site, incoming, outgoing):
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
    _train(model, opt, x)
    before = copy.deepcopy(model)
    state_before = copy.deepcopy(opt.state_dict())
    expected_out = _ablated_output(before, site, MASK, x, axis=-1)

    report = recycle_dormant(model, site, MASK, optimizer=opt, generator=torch.Generator().manual_seed(7))
    assert report == RecycleReport(site=site, incoming=incoming, outgoing=outgoing, recycled=3, total=8)

    mods, old = dict(model.named_modules()), dict(before.named_modules())
    lin_in, lin_out, fresh = mods[incoming], mods[outgoing], _oracle_fresh(old[incoming], 7)
    # incoming rows of masked neurons = PyTorch's default init drawn from the same seed; others untouched
    assert torch.equal(lin_in.weight[MASK], fresh.weight[MASK])
    assert torch.equal(lin_in.bias[MASK], fresh.bias[MASK])
    assert torch.equal(lin_in.weight[~MASK], old[incoming].weight[~MASK])
    assert torch.equal(lin_in.bias[~MASK], old[incoming].bias[~MASK])
    assert not torch.equal(lin_in.weight[MASK], old[incoming].weight[MASK])
    # outgoing columns of masked neurons are zero, the rest (and the outgoing bias) untouched
    assert torch.count_nonzero(lin_out.weight[:, MASK]) == 0
    assert torch.equal(lin_out.weight[:, ~MASK], old[outgoing].weight[:, ~MASK])
    assert torch.equal(lin_out.bias, old[outgoing].bias)
    # the network function equals the original with those neurons ablated
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected_out, rtol=0, atol=1e-7)

    # Adam moments: zero for exactly the recycled entries, step counts kept, other params untouched
    names = [n for n, _ in model.named_parameters()]
    st_after = opt.state_dict()["state"]
    st_before = state_before["state"]
    for i, name in enumerate(names):
        for key in ("exp_avg", "exp_avg_sq"):
            a, b = st_after[i][key], st_before[i][key]
            if name == f"{incoming}.weight" or name == f"{incoming}.bias":
                assert torch.count_nonzero(a[MASK]) == 0 and torch.count_nonzero(b[MASK]) > 0
                assert torch.equal(a[~MASK], b[~MASK])
            elif name == f"{outgoing}.weight":
                assert torch.count_nonzero(a[:, MASK]) == 0
                assert torch.equal(a[:, ~MASK], b[:, ~MASK])
            else:
                assert torch.equal(a, b), name
        assert torch.equal(torch.as_tensor(st_after[i]["step"]), torch.as_tensor(st_before[i]["step"]))
    _train(model, opt, x, steps=1)  # the optimizer still works afterwards


def test_recycle_sgd_momentum_and_index_mask_and_bias_zero():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
    _train(model, opt, x)
    before = copy.deepcopy(model)
    idx = [0, 2, 7]
    report = recycle_dormant(model, "1", idx, optimizer=opt, bias="zero")
    assert report.recycled == 3
    assert torch.count_nonzero(model[0].bias[MASK]) == 0
    assert torch.equal(model[0].bias[~MASK], before[0].bias[~MASK])
    assert torch.count_nonzero(opt.state[model[0].weight]["momentum_buffer"][MASK]) == 0
    assert torch.count_nonzero(opt.state[model[2].weight]["momentum_buffer"][:, MASK]) == 0
    assert torch.count_nonzero(opt.state[model[2].weight]["momentum_buffer"][:, ~MASK]) > 0


def test_recycle_conv_to_conv_and_conv_to_flattened_linear():
    model = _cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    _train(model, opt, x)

    before = copy.deepcopy(model)
    mask4 = torch.tensor([False, True, False, True])
    expected = _ablated_output(before, "1", mask4, x, axis=1)
    report = recycle_dormant(model, "1", mask4, optimizer=opt, generator=torch.Generator().manual_seed(3))
    assert (report.incoming, report.outgoing, report.recycled) == ("0", "2", 2)
    fresh = _oracle_fresh(before[0], 3)
    assert torch.equal(model[0].weight[mask4], fresh.weight[mask4])
    assert torch.equal(model[0].weight[~mask4], before[0].weight[~mask4])
    assert torch.count_nonzero(model[2].weight[:, mask4]) == 0
    assert torch.equal(model[2].weight[:, ~mask4], before[2].weight[:, ~mask4])
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)

    # Conv -> Flatten -> Linear: channel c owns columns c*16 .. c*16+15 of the Linear.
    before = copy.deepcopy(model)
    mask5 = torch.tensor([True, False, False, False, True])
    expected = _ablated_output(before, "3", mask5, x, axis=1)
    report = recycle_dormant(model, "3", mask5, optimizer=opt)
    assert (report.incoming, report.outgoing) == ("2", "5")
    cols = mask5.repeat_interleave(16)
    assert torch.count_nonzero(model[5].weight[:, cols]) == 0
    assert torch.equal(model[5].weight[:, ~cols], before[5].weight[:, ~cols])
    assert torch.count_nonzero(opt.state[model[5].weight]["exp_avg"][:, cols]) == 0
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)


class _Unordered(nn.Module):
    """Registration order differs from execution order: inference cannot find the reader."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 3)
        self.hidden = nn.Linear(4, 8)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.head(self.act(self.hidden(x)))


def test_explicit_incoming_outgoing_override():
    torch.manual_seed(0)
    model = _Unordered()
    with pytest.raises(ValueError, match="outgoing="):
        recycle_dormant(model, "act", MASK)
    x = torch.randn(5, 4)
    expected = _ablated_output(copy.deepcopy(model), "act", MASK, x, axis=-1)
    report = recycle_dormant(model, "act", MASK, incoming="hidden", outgoing="head")
    assert (report.incoming, report.outgoing, report.recycled) == ("hidden", "head", 3)
    assert torch.count_nonzero(model.head.weight[:, MASK]) == 0
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-7)


def test_site_object_and_empty_mask_is_identity():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class FakeSite:
        name: str
        module: nn.Module
        axis: int = -1

    model = _mlp()
    before = copy.deepcopy(model.state_dict())
    report = recycle_dormant(model, FakeSite("1", model[1]), torch.zeros(8, dtype=torch.bool))
    assert report.recycled == 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_same_generator_seed_is_deterministic():
    a, b = _mlp(), _mlp()
    recycle_dormant(a, "1", MASK, generator=torch.Generator().manual_seed(5))
    recycle_dormant(b, "1", MASK, generator=torch.Generator().manual_seed(5))
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"site": "1", "mask": torch.ones(7, dtype=torch.bool)}, ValueError, "shape \\(8,\\)"),
        ({"site": "1", "mask": [0, 8]}, ValueError, "\\[0, 8\\)"),
        ({"site": "1", "mask": torch.ones(8)}, TypeError, "dtype"),
        ({"site": "1", "mask": "all"}, TypeError, "mask"),
        ({"site": "9", "mask": MASK}, ValueError, "no module named '9'"),
        ({"site": "4", "mask": torch.ones(3, dtype=torch.bool)}, ValueError, "output layer"),
        ({"site": "1", "mask": MASK, "incoming": "1"}, TypeError, "incoming.*ReLU"),
        ({"site": "1", "mask": MASK, "outgoing": "3"}, TypeError, "outgoing.*ReLU"),
        ({"site": "1", "mask": MASK, "outgoing": "4"}, ValueError, "in_features=8|does not match"),
        ({"site": "1", "mask": MASK, "bias": "random"}, ValueError, "bias"),
        ({"site": "1", "mask": MASK, "generator": 3}, TypeError, "generator"),
        ({"site": "1", "mask": MASK, "optimizer": "adam"}, TypeError, "optimizer"),
        ({"site": 1, "mask": MASK}, TypeError, "site"),
    ],
)
def test_recycle_bad_input_raises_and_changes_nothing(kwargs, exc, match):
    model = _mlp()
    if kwargs.get("outgoing") == "4":  # make the mismatch real: a reader with the wrong fan-in
        model[4] = nn.Linear(5, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    if kwargs.get("outgoing") != "4":  # (the mismatched model cannot run forward)
        _train(model, opt, torch.randn(4, 6))
    params = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(opt.state_dict())
    kwargs.setdefault("optimizer", opt)
    with pytest.raises(exc, match=match):
        recycle_dormant(model, **kwargs)
    for k, v in model.state_dict().items():
        assert torch.equal(v, params[k])
    for i, s in opt.state_dict()["state"].items():
        for key, v in s.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(opt_state["state"][i][key]))


def test_unsupported_incoming_layer_type():
    model = nn.Sequential(nn.Embedding(10, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="incoming="):
        recycle_dormant(model, "1", MASK)
    with pytest.raises(TypeError, match="Embedding"):
        recycle_dormant(model, "1", MASK, incoming="0")


# ----------------------------------------------------------------------------------------------
# perturb / perturb_factor / fresh_parameters
# ----------------------------------------------------------------------------------------------


def _mixed() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 6 * 6, 8),
        nn.LayerNorm(8),
        nn.ReLU(),
        nn.Linear(8, 4, bias=False),
    )


def _oracle_model(model: nn.Module, seed: int) -> nn.Module:
    """PyTorch's default init of every Linear/Conv, in module order, from torch.manual_seed(seed)."""
    fresh = copy.deepcopy(model)
    torch.manual_seed(seed)
    for m in fresh.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            m.reset_parameters()
    return fresh


def test_fresh_parameters_match_reset_parameters():
    for layer in (nn.Linear(5, 7), nn.Conv2d(2, 3, 3), nn.Conv1d(4, 2, 5, bias=False)):
        fresh = fresh_parameters(layer, torch.Generator().manual_seed(11))
        oracle = _oracle_fresh(layer, 11)
        assert torch.equal(fresh["weight"], oracle.weight)
        assert ("bias" in fresh) == (layer.bias is not None)
        if layer.bias is not None:
            assert torch.equal(fresh["bias"], oracle.bias)
    with pytest.raises(TypeError, match="LayerNorm"):
        fresh_parameters(nn.LayerNorm(3))


def test_perturb_alpha_one_is_identity_and_alpha_zero_is_fresh_init():
    model = _mixed()
    with torch.no_grad():
        model[4].weight.mul_(3.0)  # a LayerNorm away from its init: must be left alone
    before = copy.deepcopy(model)
    report = perturb(model, 1.0, torch.Generator().manual_seed(4))
    assert report == {"0": 3 * 9 + 3, "3": 108 * 8 + 8, "6": 32}
    for (_, p), (_, q) in zip(model.named_parameters(), before.named_parameters(), strict=True):
        assert torch.equal(p, q)

    perturb(model, 0.0, torch.Generator().manual_seed(4))
    oracle = _oracle_model(before, 4)
    for name in ("0.weight", "0.bias", "3.weight", "3.bias", "6.weight"):
        assert torch.equal(model.state_dict()[name], oracle.state_dict()[name]), name
    assert torch.equal(model[4].weight, before[4].weight)  # LayerNorm untouched


def test_perturb_interpolation_is_exact_and_wipes_optimizer_state():
    model = _mixed()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(4, 1, 8, 8)
    _train(model, opt, x)
    before = copy.deepcopy(model)
    alpha = 0.3
    perturb(model, alpha, torch.Generator().manual_seed(9), optimizer=opt, modules=["3", "6"])
    g = torch.Generator().manual_seed(9)  # only layers 3 and 6 draw, in module order
    fresh3 = fresh_parameters(before[3], g)
    fresh6 = fresh_parameters(before[6], g)
    for layer, fresh in ((3, fresh3), (6, fresh6)):
        for pname, new in fresh.items():
            old = getattr(before[layer], pname)
            assert torch.equal(getattr(model[layer], pname), alpha * old + (1 - alpha) * new)
            assert getattr(model[layer], pname) not in opt.state
    assert torch.equal(model[0].weight, before[0].weight)  # not matched by `modules`
    assert model[0].weight in opt.state and model[4].weight in opt.state
    _train(model, opt, x, steps=1)  # Adam re-initialises the wiped state on its next step
    assert opt.state[model[3].weight]["step"].item() == 1


def test_perturb_glob_and_errors_leave_model_unchanged():
    model = _mixed()
    before = copy.deepcopy(model.state_dict())
    for bad in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="alpha"):
            perturb(model, bad)
    with pytest.raises(ValueError, match="matches no Linear/Conv"):
        perturb(model, 0.5, modules="encoder.*")
    with pytest.raises(TypeError, match="generator"):
        perturb(model, 0.5, generator=0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert set(perturb(model, 0.5, modules="[36]")) == {"3", "6"}


@pytest.mark.parametrize("beta", [0.0, 0.05, 0.2, 0.3, 0.4, 0.5, 0.9, 1.0])
def test_perturb_factor_formula(beta):
    assert perturb_factor(beta) == pytest.approx(min(max(1 - 2 * beta, 0.2), 0.6))
    assert perturb_factor(beta, k=1.0, alpha_min=0.0, alpha_max=1.0) == pytest.approx(1 - beta)


def test_perturb_factor_worked_values_and_errors():
    assert perturb_factor(0.0) == 0.6  # alpha_max binds
    assert perturb_factor(0.3) == pytest.approx(0.4)  # 1 - 2 * 0.3
    assert perturb_factor(0.45) == 0.2  # alpha_min binds
    with pytest.raises(ValueError, match="beta"):
        perturb_factor(1.2)
    with pytest.raises(ValueError, match="alpha_min"):
        perturb_factor(0.1, alpha_min=0.7, alpha_max=0.6)
    with pytest.raises(ValueError, match="alpha_max"):
        perturb_factor(0.1, alpha_max=1.5)
