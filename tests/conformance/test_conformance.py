"""Run every conformance check on every case of every tests/conformance/cases_*.py module.

A new mechanism joins by adding one ``cases_<area>.py`` that defines ``CASES = [ConformanceCase(...)]``.
The second half checks the checks: each one must fail on an object that breaks its rule.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest
import torch
from torch import nn

from neuroplast.testing import (
    CHECKS,
    ConformanceCase,
    check_attach_detach_identity,
    check_determinism,
    check_dtype_preserved,
    check_state_dict_roundtrip,
    run_method,
)

HERE = Path(__file__).parent


def _case_modules() -> list[object]:
    mods = []
    for info in sorted(pkgutil.iter_modules([str(HERE)]), key=lambda i: i.name):
        if not info.name.startswith("cases_"):
            continue
        if __package__:
            mods.append(importlib.import_module(f"{__package__}.{info.name}"))
        else:  # imported outside a package (pytest --import-mode=importlib): load by path
            path = HERE / f"{info.name}.py"
            spec = importlib.util.spec_from_file_location(f"_conformance_{info.name}", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            mods.append(mod)
    return mods


def _collect() -> list[ConformanceCase]:
    cases: list[ConformanceCase] = []
    for mod in _case_modules():
        found = getattr(mod, "CASES", None)
        if not isinstance(found, list) or not all(isinstance(c, ConformanceCase) for c in found):
            raise TypeError(f"{mod.__name__}: CASES must be a list of ConformanceCase")
        cases.extend(found)
    names = [c.name for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate conformance case names: {dupes}")
    return cases


CASES = _collect()


def _skip_unless(case: ConformanceCase, check: str) -> None:
    assert check in CHECKS
    if check in case.skip:
        pytest.skip(f"case {case.name!r} opts out of {check}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_state_dict_roundtrip(case: ConformanceCase) -> None:
    _skip_unless(case, "state_dict")
    check_state_dict_roundtrip(case.subject, case.exercise)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_attach_detach_identity(case: ConformanceCase) -> None:
    _skip_unless(case, "attach_detach")
    if case.method_factory is None:
        pytest.skip(f"case {case.name!r} is a module, not a method")
    check_attach_detach_identity(case.model_factory, case.method_factory, case.input_factory)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_determinism(case: ConformanceCase) -> None:
    _skip_unless(case, "determinism")
    if case.input_factory is None:
        pytest.skip(f"case {case.name!r} has no input_factory")
    check_determinism(lambda seed: run_method(case.model_factory, case.method_factory, case.input_factory))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_dtype_preserved(case: ConformanceCase) -> None:
    _skip_unless(case, "dtype")
    if case.input_factory is None:
        pytest.skip(f"case {case.name!r} has no input_factory")
    check_dtype_preserved(case.model_factory, case.method_factory, case.input_factory)


def test_discovery_finds_the_core_cases() -> None:
    names = {c.name for c in CASES}
    assert {"clamp", "ablate", "scale", "noise", "recorder_mlp"} <= names


# -- the checks can fail -----------------------------------------------------------------------------
def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU())


class _LeakyHook:
    """Detach forgets to remove its hook."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def attach(self) -> None:
        self.model[1].register_forward_hook(lambda m, a, o: o)

    def detach(self) -> None:
        pass


class _LeavesAttribute:
    """Detach leaves a mask attribute behind (as a half-undone pruning would)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def attach(self) -> None:
        self.model[0].weight_mask = torch.ones(4, 3)

    def detach(self) -> None:
        pass


class _EditsWeights:
    """Detach does not restore a weight it edited in place."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def attach(self) -> None:
        with torch.no_grad():
            self.model[0].weight[0, 0] += 1.0

    def detach(self) -> None:
        pass


@pytest.mark.parametrize("method", [_LeakyHook, _LeavesAttribute, _EditsWeights])
def test_attach_detach_check_catches_leftovers(method: type) -> None:
    with pytest.raises(AssertionError):
        check_attach_detach_identity(_mlp, method, lambda: torch.randn(2, 3))


class _Counter:
    def __init__(self, load_ok: bool = True) -> None:
        self.n, self.load_ok = 0, load_ok

    def state_dict(self) -> dict:
        return {"n": self.n}

    def load_state_dict(self, state: dict) -> None:
        if self.load_ok:
            self.n = state["n"]


def test_state_dict_check_catches_a_broken_load_and_a_vacuous_exercise() -> None:
    check_state_dict_roundtrip(_Counter, lambda c: setattr(c, "n", 3))  # the honest object passes
    with pytest.raises(AssertionError, match="after load_state_dict"):
        check_state_dict_roundtrip(lambda: _Counter(load_ok=False), lambda c: setattr(c, "n", 3))
    with pytest.raises(AssertionError, match="did not change"):
        check_state_dict_roundtrip(_Counter, lambda c: None)


def test_determinism_check_catches_unseeded_randomness() -> None:
    unseeded = torch.Generator()  # seeded once, outside the check: draws differ between runs
    with pytest.raises(AssertionError):
        check_determinism(lambda seed: torch.rand(3, generator=unseeded))
    check_determinism(lambda seed: torch.rand(3), distinct_seed=1)  # global RNG is seeded by the check
    with pytest.raises(AssertionError, match="identical"):
        check_determinism(lambda seed: torch.ones(3), distinct_seed=1)


def test_dtype_check_catches_a_float32_cast() -> None:
    class ToFloat32:
        def __init__(self, model: nn.Module) -> None:
            self.handle = None
            self.model = model

        def attach(self) -> None:
            self.handle = self.model[1].register_forward_hook(lambda m, a, o: o.float())

        def detach(self) -> None:
            self.handle.remove()

    with pytest.raises(AssertionError, match="dtype"):
        check_dtype_preserved(_mlp, ToFloat32, lambda: torch.randn(2, 3))


def test_case_rejects_unknown_skip_names() -> None:
    with pytest.raises(ValueError, match="unknown checks"):
        ConformanceCase("x", _mlp, skip=("state_dicts",))
