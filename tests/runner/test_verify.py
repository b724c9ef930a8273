"""verify: claims measured on every seed, the table, verify.json, exit codes; Claim and the registry."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest

import neuroplast.studies as studies
from neuroplast.cli import main
from neuroplast.studies import Claim, ClaimResult, Study, StudyError, get_study, register


def test_verify_passing_study_exits_0_and_records_every_seed(toy, tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["verify", "toy", "--quick", "--seeds", "0-1", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "study" in stdout and "measured per seed" in stdout and "loss-drops" in stdout
    report = json.loads((out / "verify.json").read_text())
    assert report["all_hold"] is True and report["seeds"] == [0, 1] and report["quick"] is True
    study = get_study("toy")
    claims = report["studies"]["toy"]["claims"]
    for seed in (0, 1):
        # oracle: each claim evaluated again on the seed's summary.json
        summary = json.loads((out / "toy" / f"seed-{seed}" / "summary.json").read_text())
        for c, recorded in zip(study.claims, claims, strict=True):
            expected = c.evaluate(summary)
            assert recorded["name"] == c.name
            assert recorded["values"][str(seed)] == pytest.approx(expected.value)
            assert recorded["holds_per_seed"][str(seed)] is expected.holds is True
            assert f"{expected.value:.4g}" in stdout


def test_verify_failing_claim_exits_1(toy, tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["verify", "toy", "toy-failing", "--quick", "--seeds", "3", "--out", str(out)]) == 1
    stdout = capsys.readouterr().out
    rows = {tuple(line.split()[:2]): line for line in stdout.splitlines() if line.startswith("toy")}
    assert rows[("toy-failing", "flag-set")].rstrip().endswith("NO")
    assert "3: 0 (x)" in rows[("toy-failing", "flag-set")]
    assert rows[("toy", "flag-set")].rstrip().endswith("yes")
    report = json.loads((out / "verify.json").read_text())
    assert report["all_hold"] is False
    assert report["studies"]["toy"]["holds"] is True and report["studies"]["toy-failing"]["holds"] is False
    assert sorted(p.name for p in out.iterdir()) == ["toy", "toy-failing", "verify.json"]


def test_verify_bad_input(toy, tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["verify", "toy", "nope", "--out", str(out)]) == 2
    assert "unknown study 'nope'" in capsys.readouterr().err
    assert main(["verify", "toy", "--seeds", "x", "--out", str(out)]) == 2
    assert main(["verify", "toy", "toy", "--out", str(out)]) == 2
    assert "listed twice" in capsys.readouterr().err
    assert not out.exists()


def test_verify_counts_a_crashed_run_as_not_holding(toy, tmp_path, capsys, monkeypatch):
    def crash(self, cfg, run):
        raise RuntimeError("boom")

    monkeypatch.setattr(type(get_study("toy")), "run", crash)
    out = tmp_path / "v"
    assert main(["verify", "toy", "--seeds", "0", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "RuntimeError: boom" in captured.err and "run seed 0 failed" in captured.out
    report = json.loads((out / "verify.json").read_text())
    assert report["studies"]["toy"]["claims"][0]["values"] == {"0": None}


# -- Claim -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, value, holds",
    [(">", 1.0, False), (">=", 1.0, True), ("<", 1.0, False), ("<=", 1.0, True),
     (">", 1.5, True), ("<", 0.5, True), (">=", 0.5, False), ("<=", 1.5, False)],
)
def test_claim_ops_at_and_around_the_threshold(op, value, holds):
    claim = Claim("c", "s", lambda s: s["x"], op, 1.0)
    assert claim.evaluate({"x": value}) == ClaimResult("c", value, holds)


def test_claim_that_cannot_be_measured_does_not_hold():
    claim = Claim("c", "s", lambda s: s["missing"], ">", 0.0)
    r = claim.evaluate({"x": 1})
    assert r.holds is False and math.isnan(r.value) and "KeyError" in r.error
    assert r.to_json()["value"] is None
    nan = Claim("c", "s", lambda s: s["x"], "<", 1.0).evaluate({"x": float("nan")})
    assert nan.holds is False
    none = Claim("c", "s", lambda s: s["x"], "<", 1.0).evaluate({"x": None})  # a NaN saved as null
    assert none.holds is False and "TypeError" in none.error


def test_claim_rejects_bad_definitions():
    with pytest.raises(ValueError, match="op must be one of"):
        Claim("c", "s", lambda s: 0.0, "==", 1.0)
    with pytest.raises(TypeError, match="threshold must be a number"):
        Claim("c", "s", lambda s: 0.0, ">", "1")
    with pytest.raises(TypeError, match="measure must be callable"):
        Claim("c", "s", 3.0, ">", 1.0)


# -- registry ----------------------------------------------------------------------------------


@dataclass
class _Cfg:
    n: int = 1


def _study(key, config=_Cfg, claims=()):
    attrs = {"key": key, "Config": config, "claims": claims, "__module__": "tests_made_up"}
    return type("S", (Study,), attrs)


def test_register_checks_keys_and_duplicates(toy):
    with pytest.raises(StudyError, match="registered twice"):
        register(_study("toy"))
    register(toy.ToyStudy)  # the same class again is fine (module reload)
    with pytest.raises(StudyError, match="kebab-case"):
        register(_study("Bad_Key"))
    with pytest.raises(StudyError, match="Config must be a dataclass"):
        register(_study("no-dataclass", config=dict))
    c = Claim("same", "s", lambda s: 0.0, ">", 0.0)
    with pytest.raises(StudyError, match="claim names must be unique"):
        register(_study("dupe-claims", claims=(c, c)))
    with pytest.raises(TypeError, match="Study subclass"):
        register(object)


def test_get_study_and_all_studies(toy):
    assert type(get_study("toy")) is toy.ToyStudy
    with pytest.raises(StudyError, match="did you mean toy"):
        get_study("tyo")
    keys = [s.key for s in studies.all_studies()]
    assert keys == sorted(keys) and {"toy", "toy-failing"} <= set(keys)


def test_plugin_module_that_does_not_exist_is_reported(toy, monkeypatch):
    monkeypatch.setenv("NEUROPLAST_STUDIES", "toy_study, no_such_plugin_module")
    monkeypatch.setattr(studies, "_IMPORT_ERRORS", {})
    monkeypatch.setattr(studies, "_ATTEMPTED", set(studies._ATTEMPTED))
    errors = studies.discovery_errors()
    assert "no_such_plugin_module" in errors and "PYTHONPATH" in errors["no_such_plugin_module"]
    with pytest.raises(StudyError, match="no_such_plugin_module failed to import"):
        get_study("from-the-plugin")
    assert get_study("toy").key == "toy"  # the other studies still work
