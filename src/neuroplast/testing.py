"""Conformance checks that every neuroplast method and neuron module should pass.

In the spirit of scikit-learn's ``check_estimator`` and PyTorch's pruning tests:

- :func:`check_state_dict_roundtrip`: ``state_dict`` -> ``load_state_dict`` into a fresh object
  (also through ``save_state``/``load_state`` files) gives back the same state;
- :func:`check_attach_detach_identity`: attach + forward + detach/remove leaves the model
  bit-identical: same parameter and buffer objects and values, no leftover hooks or
  attributes, same forward output;
- :func:`check_determinism`: the same seed gives bit-identical results;
- :func:`check_dtype_preserved`: a float64 model and input give float64 outputs with the method on.

Study checks (one tiny-budget run each, used by ``tests/studies/test_<study>.py``):

- :func:`check_study_registered`: the study is registered under its key with the paper's arXiv
  id and catalog family, has claims, and ``Config.quick()`` builds;
- :func:`check_study_smoke`: ``run_study`` gives a summary equal to summary.json, every claim
  evaluates to a :class:`~neuroplast.studies.ClaimResult` without error, the named figures are
  non-empty PNGs;
- :func:`check_study_determinism`: the same seed gives the same summary and byte-identical
  summary.json, claims.json and metrics.jsonl; another seed gives a different summary;
- :func:`check_study_resume`: a run killed after a checkpoint and resumed ends byte-identical
  (summary.json, claims.json, metrics.jsonl) to an uninterrupted run;
- :func:`check_study_rejects`: each bad ``--set`` list raises NeuroplastUsageError naming the
  field, before any run directory is created.

Tests register :class:`ConformanceCase` objects in ``tests/conformance/cases_<area>.py`` (a module
level ``CASES`` list); ``tests/conformance/test_conformance.py`` runs every check on every case.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neuroplast.core.seed import seed_everything
from neuroplast.core.serialize import load_state, save_state

__all__ = [
    "CHECKS", "ConformanceCase", "assert_same", "check_state_dict_roundtrip",
    "check_attach_detach_identity", "check_determinism", "check_dtype_preserved", "run_method",
    "check_study_registered", "check_study_smoke", "check_study_determinism", "check_study_resume",
    "check_study_rejects",
]

#: Names of the checks a case may opt out of (with ``skip=``).
CHECKS = ("state_dict", "attach_detach", "determinism", "dtype")

_HOOK_DICTS = (
    "_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
    "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
)
_GLOBAL_HOOKS = (
    "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
    "_global_backward_pre_hooks", "_global_forward_hooks_always_called",
)


@dataclass(frozen=True)
class ConformanceCase:
    """One thing under conformance test.

    Args:
        name: unique id (shown in pytest).
        model_factory: ``() -> nn.Module``. When ``method_factory`` is None, the model itself is
            the object under test (neuron modules).
        method_factory: ``model -> method``; the method has ``attach()`` (optional, some attach
            in their constructor) and ``detach()`` or ``remove()``, and ``state_dict()`` /
            ``load_state_dict()``.
        input_factory: ``() -> input`` (a tensor, or a tuple of positional arguments).
        exercise: ``obj -> None``: moves the object's state away from its initial value before
            the state_dict round trip (e.g. ``lambda c: c.step()``), so the check proves something.
        skip: names from ``CHECKS`` that do not apply, e.g. ``("attach_detach",)`` for a method
            whose ``remove()`` makes a change permanent, or ``("determinism",)``.
    """

    name: str
    model_factory: Callable[[], nn.Module]
    method_factory: Callable[[nn.Module], Any] | None = None
    input_factory: Callable[[], Any] | None = None
    exercise: Callable[[Any], None] | None = None
    skip: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.skip) - set(CHECKS)
        if unknown:
            raise ValueError(
                f"ConformanceCase {self.name!r}: unknown checks in skip: {sorted(unknown)}; use {CHECKS}"
            )

    def subject(self) -> Any:
        """A fresh object under test: ``method_factory(model_factory())`` or the model."""
        model = self.model_factory()
        return model if self.method_factory is None else self.method_factory(model)


# -- comparison ------------------------------------------------------------------------------
def assert_same(a: Any, b: Any, path: str = "state") -> None:
    """Bitwise structural equality: same keys, types (dicts of any kind match), dtypes, shapes,
    values (NaN equals NaN). Raises AssertionError naming the first differing path."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            other = b if isinstance(a, torch.Tensor) else a
            raise AssertionError(f"{path}: tensor vs {type(other).__name__}")
        if a.dtype != b.dtype or a.shape != b.shape:
            raise AssertionError(f"{path}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}")
        a_, b_ = a.detach().cpu(), b.detach().cpu()
        same = torch.equal(a_, b_)
        if not same and a_.is_floating_point():
            same = bool(((a_ == b_) | (a_.isnan() & b_.isnan())).all())
        if not same:
            raise AssertionError(f"{path}: tensor values differ")
        return
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if list(a.keys()) != list(b.keys()):
            raise AssertionError(f"{path}: keys {list(a.keys())} vs {list(b.keys())}")
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
        return
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            raise AssertionError(f"{path}: lengths {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
        return
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    if type(a) is not type(b) or a != b:
        raise AssertionError(f"{path}: {a!r} vs {b!r}")


def _differs(a: Any, b: Any) -> bool:
    try:
        assert_same(a, b)
    except AssertionError:
        return True
    return False


# -- helpers ---------------------------------------------------------------------------------
def _forward(model: nn.Module, x: Any) -> Any:
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)  # stochastic layers see the same draws before and after
        return model(*x) if isinstance(x, tuple) else model(x)


def _attach(obj: Any) -> None:
    if callable(getattr(obj, "attach", None)):
        obj.attach()


def _undo(obj: Any) -> None:
    for name in ("detach", "remove"):
        fn = getattr(obj, name, None)
        if callable(fn):
            fn()
            return
    raise AssertionError(f"{type(obj).__name__} has neither detach() nor remove()")


def _snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything attach/detach must leave as it was, by value and by identity."""
    mods = dict(model.named_modules(remove_duplicate=False))
    return {
        "parameters": {n: (p, p.detach().clone(), p.requires_grad) for n, p in model.named_parameters()},
        "buffers": {n: (b, b.detach().clone()) for n, b in model.named_buffers()},
        "modules": {n: (m, type(m), m.training, sorted(vars(m))) for n, m in mods.items()},
        "hooks": {n: {h: list(getattr(m, h, None) or {}) for h in _HOOK_DICTS} for n, m in mods.items()},
        "tensor_hooks": {n: list(p._backward_hooks or {}) for n, p in model.named_parameters()},
        "global_hooks": {h: list(getattr(nn.modules.module, h, {})) for h in _GLOBAL_HOOKS},
    }


def _compare_snapshots(before: dict[str, Any], after: dict[str, Any]) -> None:
    for part in ("parameters", "buffers", "modules"):
        if list(before[part]) != list(after[part]):
            raise AssertionError(f"{part} names changed: {list(before[part])} -> {list(after[part])}")
    for n, (p0, v0, rg0) in before["parameters"].items():
        p1, v1, rg1 = after["parameters"][n]
        if p1 is not p0:
            raise AssertionError(f"parameter {n!r} was replaced by another object")
        if rg0 != rg1:
            raise AssertionError(f"parameter {n!r}: requires_grad changed {rg0} -> {rg1}")
        assert_same(v0, v1, f"parameter {n!r}")
    for n, (b0, v0) in before["buffers"].items():
        b1, v1 = after["buffers"][n]
        if b1 is not b0:
            raise AssertionError(f"buffer {n!r} was replaced by another object")
        assert_same(v0, v1, f"buffer {n!r}")
    for n, (m0, t0, tr0, attrs0) in before["modules"].items():
        m1, t1, tr1, attrs1 = after["modules"][n]
        if m1 is not m0 or t1 is not t0:
            raise AssertionError(
                f"module {n!r} was replaced or changed class ({t0.__name__} -> {t1.__name__})"
            )
        if tr0 != tr1:
            raise AssertionError(f"module {n!r}: training flag changed {tr0} -> {tr1}")
        if attrs0 != attrs1:
            extra, gone = sorted(set(attrs1) - set(attrs0)), sorted(set(attrs0) - set(attrs1))
            raise AssertionError(f"module {n!r}: attributes added {extra}, removed {gone}")
    for key in ("hooks", "tensor_hooks", "global_hooks"):
        if before[key] != after[key]:
            raise AssertionError(f"{key} left behind: {before[key]} -> {after[key]}")


# -- checks ----------------------------------------------------------------------------------
def check_state_dict_roundtrip(
    obj_factory: Callable[[], Any], exercise: Callable[[Any], None] | None = None, via_files: bool = True
) -> None:
    """``state_dict`` of an (exercised) object loads into a fresh one and reads back identical.

    With ``exercise``, the exercised state must differ from a fresh object's (else the round trip
    proves nothing). With ``via_files``, the state also goes through ``save_state``/``load_state``
    (safetensors + JSON), as checkpoints do.
    """
    obj = obj_factory()
    if exercise is not None:
        exercise(obj)
    state = obj.state_dict()
    fresh = obj_factory()
    if exercise is not None and not _differs(fresh.state_dict(), state):
        raise AssertionError("exercise() did not change the state: the round trip would prove nothing")
    fresh.load_state_dict(state)
    assert_same(state, fresh.state_dict(), "state after load_state_dict")
    if via_files:
        with tempfile.TemporaryDirectory() as tmp:
            save_state(Path(tmp) / "state", state)
            loaded = load_state(Path(tmp) / "state")
        other = obj_factory()
        other.load_state_dict(loaded)
        assert_same(state, other.state_dict(), "state after save_state/load_state")


def check_attach_detach_identity(
    model_factory: Callable[[], nn.Module],
    method_factory: Callable[[nn.Module], Any],
    input_factory: Callable[[], Any] | None = None,
) -> None:
    """Attach, run a forward pass, detach (or remove): the model is bit-identical to before.

    Compared: parameter and buffer objects, values and ``requires_grad``; module objects, classes,
    training flags and attribute names; every hook dict (module, parameter and global); and, with
    ``input_factory``, the forward output (eval mode, same RNG draws).
    """
    model = model_factory()
    model.eval()
    x = input_factory() if input_factory is not None else None
    before = _snapshot(model)
    out_before = _forward(model, x) if x is not None else None
    obj = method_factory(model)
    _attach(obj)
    if x is not None:
        _forward(model, x)
    _undo(obj)
    _compare_snapshots(before, _snapshot(model))
    if x is not None:
        assert_same(out_before, _forward(model, x), "forward output after detach")


def check_determinism(fn: Callable[[int], Any], seed: int = 0, distinct_seed: int | None = None) -> Any:
    """``seed_everything(seed); fn(seed)`` twice gives bit-identical results; returns the result.

    With ``distinct_seed``, ``fn(distinct_seed)`` must differ (the seed is actually used).
    """
    seed_everything(seed)
    first = fn(seed)
    seed_everything(seed)
    assert_same(first, fn(seed), f"result of a second run with seed {seed}")
    if distinct_seed is not None:
        seed_everything(distinct_seed)
        if not _differs(first, fn(distinct_seed)):
            raise AssertionError(
                f"seeds {seed} and {distinct_seed} gave identical results: is the seed used?"
            )
    return first


def run_method(
    model_factory: Callable[[], nn.Module],
    method_factory: Callable[[nn.Module], Any] | None,
    input_factory: Callable[[], Any],
) -> Any:
    """Build model (and method), attach, run one forward pass, detach; return the output."""
    model = model_factory()
    obj = method_factory(model) if method_factory is not None else None
    if obj is not None:
        _attach(obj)
    try:
        x = input_factory()
        with torch.no_grad():
            return model(*x) if isinstance(x, tuple) else model(x)
    finally:
        if obj is not None:
            _undo(obj)


def _floating_outputs(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, list | tuple):
        return [t for o in out for t in _floating_outputs(o)]
    if isinstance(out, Mapping):
        return [t for o in out.values() for t in _floating_outputs(o)]
    return []


def check_dtype_preserved(
    model_factory: Callable[[], nn.Module],
    method_factory: Callable[[nn.Module], Any] | None,
    input_factory: Callable[[], Any],
    dtype: torch.dtype = torch.float64,
) -> None:
    """With the model and its floating inputs in ``dtype``, every floating output is ``dtype``."""

    def convert(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return x.to(dtype) if x.is_floating_point() else x
        if isinstance(x, tuple):
            return tuple(convert(v) for v in x)
        return x

    out = run_method(lambda: model_factory().to(dtype), method_factory, lambda: convert(input_factory()))
    outs = _floating_outputs(out)
    if not outs:
        raise AssertionError("the forward output holds no floating tensor to check")
    for t in outs:
        if t.dtype != dtype:
            raise AssertionError(f"output dtype {t.dtype}, expected {dtype}")


# -- study checks ---------------------------------------------------------------------------------
#: Files of a finished run directory that must be byte-identical between equivalent runs.
STUDY_RUN_FILES = ("summary.json", "claims.json", "metrics.jsonl")


def _assert_same_files(a: Path, b: Path, names: tuple[str, ...] = STUDY_RUN_FILES) -> None:
    for name in names:
        fa, fb = Path(a) / name, Path(b) / name
        if fa.read_bytes() != fb.read_bytes():
            raise AssertionError(f"{name} differs between {a} and {b}")


def check_study_registered(key: str, arxiv: str, family: str, *, n_claims: int | None = None) -> Any:
    """``get_study(key)`` has this ``arxiv`` id and ``family``, at least one claim (exactly
    ``n_claims`` when given) and a ``Config.quick()`` preset; returns the study for further checks."""
    from neuroplast.studies import get_study

    study = get_study(key)
    if study.key != key:
        raise AssertionError(f"get_study({key!r}) returned study {study.key!r}")
    if (study.arxiv, study.family) != (arxiv, family):
        raise AssertionError(
            f"study {key!r}: (arxiv, family) is {(study.arxiv, study.family)}, expected {(arxiv, family)}"
        )
    if not study.claims or (n_claims is not None and len(study.claims) != n_claims):
        raise AssertionError(f"study {key!r}: {len(study.claims)} claims, expected {n_claims or 'some'}")
    if not isinstance(study.Config.quick(), study.Config):
        raise AssertionError(f"study {key!r}: Config.quick() does not return a Config")
    return study


def check_study_smoke(
    key: str,
    sets: list[str] | tuple[str, ...],
    tmp_path: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    figures: tuple[str, ...] | list[str] = (),
    finite_claims: bool = False,
    out: str = "run",
) -> dict[str, Any]:
    """Run study ``key`` at a tiny budget in ``tmp_path/out`` and check what every study must give.

    The summary is a non-empty dict equal to the run's summary.json; every claim evaluates to a
    ClaimResult with no error (with a finite value when ``finite_claims``); claims.json holds one
    entry per claim; metrics.jsonl is valid JSON lines; each of ``figures`` (names without
    ``.png``) is a non-empty file under ``figures/``. Returns the summary for study-specific checks.
    """
    import json

    from neuroplast.runner import run_study
    from neuroplast.studies import ClaimResult, get_study

    run_dir = Path(tmp_path) / out
    summary = run_study(key, out=run_dir, seed=seed, quick=quick, sets=list(sets))
    if not isinstance(summary, dict) or not summary:
        raise AssertionError(f"study {key!r}: empty or non-dict summary {summary!r}")
    if json.loads((run_dir / "summary.json").read_text()) != summary:
        raise AssertionError(f"study {key!r}: summary.json differs from the returned summary")
    claims = get_study(key).claims
    for claim in claims:
        result = claim.evaluate(summary)
        if not isinstance(result, ClaimResult):
            raise AssertionError(f"claim {claim.name!r} returned {type(result).__name__}, not ClaimResult")
        if result.error is not None:
            raise AssertionError(f"claim {claim.name!r} could not be evaluated: {result.error}")
        if finite_claims and not math.isfinite(result.value):
            raise AssertionError(f"claim {claim.name!r} measured a non-finite value {result.value}")
    if len(json.loads((run_dir / "claims.json").read_text())) != len(claims):
        raise AssertionError(f"study {key!r}: claims.json does not hold one entry per claim")
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        json.loads(line)
    for name in figures:
        fig = run_dir / "figures" / f"{name}.png"
        if not fig.is_file() or fig.stat().st_size == 0:
            raise AssertionError(f"study {key!r}: figure {fig} is missing or empty")
    return summary


def check_study_determinism(
    key: str,
    sets: list[str] | tuple[str, ...],
    tmp_path: str | Path,
    *,
    quick: bool = False,
    seed: int = 3,
    other_seed: int | None = 4,
    differs: Callable[[dict[str, Any]], Any] = lambda s: s,
) -> dict[str, Any]:
    """Two runs with ``seed`` give the same summary and byte-identical run files (summary.json,
    claims.json, metrics.jsonl); a run with ``other_seed`` (unless None) gives a different
    ``differs(summary)`` (default: the whole summary). Returns the first summary.
    """
    from neuroplast.runner import run_study

    tmp_path = Path(tmp_path)
    a = run_study(key, out=tmp_path / "a", seed=seed, quick=quick, sets=list(sets))
    b = run_study(key, out=tmp_path / "b", seed=seed, quick=quick, sets=list(sets))
    if a != b:
        raise AssertionError(f"study {key!r}: two runs with seed {seed} gave different summaries")
    _assert_same_files(tmp_path / "a", tmp_path / "b")
    if other_seed is not None:
        c = run_study(key, out=tmp_path / "c", seed=other_seed, quick=quick, sets=list(sets))
        if differs(a) == differs(c):
            raise AssertionError(
                f"study {key!r}: seeds {seed} and {other_seed} gave the same result: is the seed used?"
            )
    return a


def check_study_resume(
    key: str,
    sets: list[str] | tuple[str, ...],
    tmp_path: str | Path,
    *,
    kill_at: int,
    kill_when: Callable[[dict[str, Any]], bool] | None = None,
    checkpoint_every: int = 1,
    quick: bool = False,
    seed: int = 1,
) -> dict[str, Any]:
    """A run killed (KeyboardInterrupt) inside ``run.log`` and resumed ends as an uninterrupted one.

    The kill happens at the ``kill_at``-th ``run.log`` call (counting only calls whose metrics
    satisfy ``kill_when``, when given), which must come after a checkpoint. Checks: the killed run
    leaves no summary.json; the resumed run is ``done`` with the same summary, and summary.json,
    claims.json and metrics.jsonl are byte-identical to the uninterrupted run's. Returns the summary.
    """
    from neuroplast.runner.run import Run, RunSpec, config_to_json, execute, make_config
    from neuroplast.studies import get_study

    tmp_path = Path(tmp_path)
    study = get_study(key)
    cfg = make_config(study, quick=quick, sets=list(sets))

    def spec(path: Path, resume: bool) -> Any:
        return RunSpec(key, type(study).__module__, config_to_json(cfg), seed, str(path), resume,
                       checkpoint_every=checkpoint_every)

    full = execute(spec(tmp_path / "full", False))
    if full.status != "done":
        raise AssertionError(f"study {key!r}: uninterrupted run {full.status}: {full.error}")
    seen = {"n": 0}
    real_log = Run.log

    def dying_log(self: Any, step: int, **metrics: Any) -> None:
        if kill_when is None or kill_when(metrics):
            seen["n"] += 1
            if seen["n"] == kill_at:
                raise KeyboardInterrupt
        real_log(self, step, **metrics)

    Run.log = dying_log  # type: ignore[method-assign]
    try:
        try:
            execute(spec(tmp_path / "killed", False))
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError(f"study {key!r}: the run was not killed (kill_at={kill_at} never reached)")
    finally:
        Run.log = real_log  # type: ignore[method-assign]
    if (tmp_path / "killed" / "summary.json").exists():
        raise AssertionError(f"study {key!r}: a killed run wrote summary.json")
    if not any((tmp_path / "killed" / "checkpoints").glob("step-*")):
        raise AssertionError(f"study {key!r}: killed before any checkpoint; raise kill_at")
    resumed = execute(spec(tmp_path / "killed", True))
    if resumed.status != "done":
        raise AssertionError(f"study {key!r}: resumed run {resumed.status}: {resumed.error}")
    if resumed.summary != full.summary:
        raise AssertionError(f"study {key!r}: the resumed run's summary differs from an uninterrupted run")
    _assert_same_files(tmp_path / "killed", tmp_path / "full")
    return full.summary


def check_study_rejects(
    key: str,
    bad_sets: list[tuple[list[str] | tuple[str, ...], str]],
    tmp_path: str | Path,
    *,
    quick: bool = False,
    validate: bool = False,
) -> None:
    """Each ``(sets, match)`` in ``bad_sets`` makes ``run_study`` raise NeuroplastUsageError with a
    message matching the regex ``match`` (on the ``quick`` preset when set), and leaves no run
    directory behind. With ``validate``, the study's own ``validate`` hook must also raise a
    ValueError matching ``match`` on the preset with those fields replaced."""
    import dataclasses
    import re

    from neuroplast.runner import NeuroplastUsageError, run_study
    from neuroplast.runner.config import parse_sets
    from neuroplast.studies import get_study

    for i, (sets, match) in enumerate(bad_sets):
        if validate:
            study = get_study(key)
            cfg = dataclasses.replace(study.config(quick=quick), **parse_sets(study, list(sets)))
            try:
                study.validate(cfg)
            except ValueError as exc:
                if not re.search(match, str(exc)):
                    raise AssertionError(
                        f"study {key!r}: validate error {exc} does not match {match!r}"
                    ) from None
            else:
                raise AssertionError(f"study {key!r}: validate accepted {sets}, expected {match!r}")
        out = Path(tmp_path) / f"bad{i}"
        try:
            run_study(key, out=out, quick=quick, sets=list(sets))
        except NeuroplastUsageError as exc:
            if not re.search(match, str(exc)):
                raise AssertionError(
                    f"study {key!r}, sets {sets}: error {exc} does not match {match!r}"
                ) from None
        else:
            raise AssertionError(
                f"study {key!r}: sets {sets} were accepted, expected an error matching {match!r}"
            )
        if out.exists():
            raise AssertionError(f"study {key!r}: rejected sets {sets} left a run directory {out}")
