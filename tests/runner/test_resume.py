"""Kill and resume: a resumed run ends with the same summary.json and metrics.jsonl as an uninterrupted one.

Oracle: the uninterrupted run of the same seed and config (CPU, deterministic toy study whose
minibatches come from run.generator and whose dropout uses the global torch RNG).
"""

from __future__ import annotations

import json
import shutil

import pytest

import neuroplast.core.serialize as serialize
from neuroplast.cli import main
from neuroplast.runner import Run, run_study


class _Killed(BaseException):
    """Stands in for SIGKILL in this process (a BaseException, like KeyboardInterrupt)."""


def _files(out):
    return (out / "summary.json").read_bytes(), (out / "metrics.jsonl").read_bytes()


@pytest.fixture
def reference(toy, tmp_path):
    out = tmp_path / "reference"
    run_study("toy", out=out, quick=True)
    return _files(out)


@pytest.fixture
def kill_at_log(monkeypatch):
    """``kill_at_log(step)``: the next run dies right after logging ``step``."""
    original = Run.log

    def arm(step):
        def log(self, s, **metrics):
            original(self, s, **metrics)
            if s == step:
                raise _Killed

        monkeypatch.setattr(Run, "log", log)

    yield arm
    monkeypatch.setattr(Run, "log", original)


def test_sigkill_in_a_subprocess_then_resume_matches_uninterrupted(cli, reference, tmp_path):
    out = tmp_path / "killed"
    proc = cli("run", "toy", "--quick", "--out", str(out), env={"NEUROPLAST_TEST_KILL_AT_STEP": "35"})
    assert proc.returncode == 137, proc.stderr
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "running" and meta["last_checkpoint_step"] == 30
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000030"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 35  # 5 lines past the checkpoint

    proc = cli("run", "--resume", str(out))
    assert proc.returncode == 0, proc.stderr
    assert _files(out) == reference  # no duplicate metric lines, same numbers
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "done" and meta["segments"] == 2


def test_kill_before_first_checkpoint_restarts_from_scratch(toy, reference, kill_at_log, tmp_path, capsys):
    out = tmp_path / "r"
    kill_at_log(5)
    with pytest.raises(_Killed):
        main(["run", "toy", "--quick", "--out", str(out)])
    assert not list((out / "checkpoints").iterdir())
    kill_at_log(-1)
    assert main(["run", "--resume", str(out)]) == 0
    assert _files(out) == reference


def test_kill_during_checkpoint_write_keeps_the_previous_one(toy, reference, monkeypatch, tmp_path):
    """The third checkpoint dies half-written: resume uses the second and cleans up the torn one."""
    out = tmp_path / "r"
    original = serialize.save_state
    calls = []

    def torn_save(path, nested):
        calls.append(path)
        if len(calls) == 3:
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "state.safetensors").write_bytes(b"\x00\x01half a file")
            raise _Killed
        original(path, nested)

    monkeypatch.setattr(serialize, "save_state", torn_save)
    with pytest.raises(_Killed):
        run_study("toy", out=out, quick=True)
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names[-1] == "step-00000020" and names[0].startswith(".tmp-step-00000030")
    monkeypatch.setattr(serialize, "save_state", original)
    assert main(["run", "--resume", str(out)]) == 0
    assert _files(out) == reference
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000060"]


@pytest.fixture
def killed_run(toy, kill_at_log, tmp_path):
    out = tmp_path / "r"
    kill_at_log(25)
    with pytest.raises(_Killed):
        run_study("toy", out=out, quick=True)
    kill_at_log(-1)
    return out


def _snapshot(out):
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", ["json", "safetensors", "truncated-metrics"])
def test_corrupted_checkpoint_is_a_usage_error_and_changes_nothing(killed_run, capsys, damage):
    ckpt = killed_run / "checkpoints" / "step-00000020"
    if damage == "json":
        (ckpt / "state.json").write_text("{not json")
    elif damage == "safetensors":
        blob = bytearray((ckpt / "state.safetensors").read_bytes())
        blob[-4:] = b"oops"
        (ckpt / "state.safetensors").write_bytes(bytes(blob))
    else:
        (killed_run / "metrics.jsonl").write_text('{"step": 1}\n')
    before = _snapshot(killed_run)
    assert main(["run", "--resume", str(killed_run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroplast: error: ")
    assert ("corrupted checkpoint" in err[0]) or ("shorter" in err[0])
    assert _snapshot(killed_run) == before


def test_resume_refuses_foreign_directories(killed_run, tmp_path, capsys):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("hello")
    assert main(["run", "--resume", str(plain)]) == 2
    assert "not a neuroplast run directory" in capsys.readouterr().err

    assert main(["run", "toy-failing", "--resume", str(killed_run)]) == 2
    assert "is a run of study 'toy', not 'toy-failing'" in capsys.readouterr().err

    bad_meta = tmp_path / "badmeta"
    shutil.copytree(killed_run, bad_meta)
    (bad_meta / "run.json").write_text("[1, 2")
    assert main(["run", "--resume", str(bad_meta)]) == 2
    assert "not valid JSON" in capsys.readouterr().err

    other_cfg = tmp_path / "othercfg"
    shutil.copytree(killed_run, other_cfg)
    cfg = json.loads((other_cfg / "config.json").read_text())
    cfg["width"] = 3
    (other_cfg / "config.json").write_text(json.dumps(cfg))
    assert main(["run", "--resume", str(other_cfg)]) == 2
    assert "unknown fields: ['width']" in capsys.readouterr().err


def test_resume_of_a_finished_run_changes_nothing(toy, tmp_path, capsys):
    out = tmp_path / "r"
    run_study("toy", out=out, quick=True)
    before = _snapshot(out)
    assert main(["run", "toy", "--resume", str(out)]) == 0
    assert "already finished" in capsys.readouterr().err
    assert _snapshot(out) == before


def test_sweep_resume_keeps_done_seeds_and_finishes_the_rest(toy, kill_at_log, tmp_path, capsys):
    ref = tmp_path / "ref"
    assert main(["run", "toy", "--quick", "--seeds", "0-2", "--out", str(ref)]) == 0
    out = tmp_path / "sweep"
    original_log = Run.log

    def log(self, s, **metrics):  # seed 1 dies at step 45; seeds run in order with --jobs 1
        original_log(self, s, **metrics)
        if self.seed == 1 and s == 45:
            raise _Killed

    Run.log = log
    try:
        with pytest.raises(_Killed):
            main(["run", "toy", "--quick", "--seeds", "0-2", "--out", str(out)])
    finally:
        Run.log = original_log
    assert json.loads((out / "seed-0" / "run.json").read_text())["status"] == "done"
    assert not (out / "seed-2").exists()
    seed0 = _snapshot(out / "seed-0")
    assert main(["run", "--resume", str(out)]) == 0
    assert _snapshot(out / "seed-0") == seed0  # a finished seed is not run again
    for s in range(3):
        assert _files(out / f"seed-{s}") == _files(ref / f"seed-{s}")
