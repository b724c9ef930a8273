"""The neuroplast command line end to end on the toy study (tests/runner/toy_study.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import neuroplast.cli as cli
from neuroplast.cli import main

RUNNER_TESTS = Path(__file__).resolve().parent / "runner"


@pytest.fixture
def toy(monkeypatch):
    import neuroplast.studies as studies

    studies.discover()  # the package's own studies stay registered after the test
    saved = dict(studies._REGISTRY)
    monkeypatch.syspath_prepend(str(RUNNER_TESTS))
    monkeypatch.setenv("NEUROPLAST_STUDIES", "toy_study")
    monkeypatch.setenv("NEUROPLAST_CHECKPOINT_EVERY", "10")
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("NEUROPLAST_TOUR", raising=False)
    import toy_study

    studies.register(toy_study.ToyStudy)
    studies.register(toy_study.ToyFailingStudy)
    yield toy_study
    studies._REGISTRY.clear()
    studies._REGISTRY.update(saved)


def _subprocess(*args, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(RUNNER_TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_list_in_a_subprocess(toy):
    proc = _subprocess("-m", "neuroplast.cli", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["key", "family", "arXiv", "claims", "title"]
    row = next(line for line in lines if line.startswith("toy "))
    assert row.split()[:4] == ["toy", "test", "0000.00000", "2"]
    assert row.endswith("Toy regression <b>& 'quotes'</b>")


def test_verify_exit_codes_through_python_dash_m_neuroplast(toy, tmp_path):
    proc = _subprocess("-m", "neuroplast", "verify", "toy-failing", "--quick", "--seeds", "0",
                       "--out", str(tmp_path / "v"))
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"toy-failing\s+flag-set .*NO", proc.stdout)
    assert json.loads((tmp_path / "v" / "verify.json").read_text())["all_hold"] is False


def test_importing_the_cli_does_not_import_matplotlib():
    code = ("import sys, neuroplast.cli, neuroplast.runner, neuroplast.studies; "
            "print('matplotlib' in sys.modules)")
    proc = _subprocess("-c", code)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


def test_list_in_process(toy, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.split()[:4] == ["toy-failing", "test", "0000.00000", "2"] for line in out)


def test_no_command_or_unknown_command_is_a_usage_error(capsys):
    for argv in ([], ["fly"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("neuroplast: error: ")


def test_run_default_out_dir(toy, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "toy", "--set", "steps=5"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert re.fullmatch(r"toy-\d{8}-\d{6}", run_dir.name)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"
    assert f"run directory: {Path('runs') / run_dir.name}" in capsys.readouterr().out


def test_tour_runs_verifies_and_reports(toy, tmp_path, monkeypatch, capsys):
    assert cli.tour_keys() == cli.TOUR == ("dormant-neurons",)
    monkeypatch.setenv("NEUROPLAST_TOUR", "toy")
    out = tmp_path / "tour"
    assert main(["tour", "--out", str(out), "--jobs", "1"]) == 0
    stdout = capsys.readouterr().out
    assert f"report: {out / 'report.html'}" in stdout
    report = json.loads((out / "verify.json").read_text())
    assert report["seeds"] == [0, 1] and report["quick"] is True and list(report["studies"]) == ["toy"]
    assert json.loads((out / "toy" / "seed-1" / "config.json").read_text())["steps"] == 60  # the quick preset
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_tour_default_out_dir_and_failing_claims(toy, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEUROPLAST_TOUR", "toy-failing")
    assert main(["tour", "--jobs", "1"]) == 1  # like verify: 1 when a claim does not hold
    (tour_dir,) = (tmp_path / "runs").iterdir()
    assert re.fullmatch(r"tour-\d{8}-\d{6}", tour_dir.name) and (tour_dir / "report.html").exists()
    monkeypatch.setenv("NEUROPLAST_TOUR", "nope")
    assert main(["tour", "--out", str(tmp_path / "t2")]) == 2
    assert not (tmp_path / "t2").exists()
