"""Fixtures for the runner tests: the toy study registered, and a CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def toy(monkeypatch):
    """Register the toy studies for one test; the registry is restored afterwards."""
    import neuroplast.studies as studies

    studies.discover()  # the package's own studies stay registered after the test
    saved = dict(studies._REGISTRY)
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("NEUROPLAST_STUDIES", "toy_study")
    monkeypatch.setenv("NEUROPLAST_CHECKPOINT_EVERY", "10")
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("NEUROPLAST_TEST_KILL_AT_STEP", raising=False)
    import toy_study

    studies.register(toy_study.ToyStudy)
    studies.register(toy_study.ToyFailingStudy)
    yield toy_study
    studies._REGISTRY.clear()
    studies._REGISTRY.update(saved)


@pytest.fixture
def cli(toy):
    """``cli(*args, env=None, cwd=None)``: run ``python -m neuroplast.cli`` with the toy study on the path."""

    def call(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
        full = dict(os.environ)
        full["PYTHONPATH"] = os.pathsep.join([str(HERE), full.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        full.update(env or {})
        return subprocess.run([sys.executable, "-m", "neuroplast.cli", *args], env=full, cwd=cwd,
                              capture_output=True, text=True, timeout=300)

    return call
