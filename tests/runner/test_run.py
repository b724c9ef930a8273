"""One run end to end: the run directory's files, config from --set, bad input (exit 2, nothing left)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

import pytest
import torch

from neuroplast.cli import main
from neuroplast.runner import NeuroplastUsageError, Run, parse_sets, run_study
from neuroplast.studies import Study, register

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_run_end_to_end_writes_the_run_directory(toy, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "toy", "--quick", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "loss-drops" in stdout and str(out) in stdout

    meta = json.loads((out / "run.json").read_text())
    assert meta["study"] == "toy" and meta["seed"] == 0 and meta["status"] == "done" and meta["quick"] is True
    import neuroplast

    assert meta["neuroplast_version"] == neuroplast.__version__
    assert meta["started"] <= meta["finished"] and meta["wall_time_s"] > 0
    assert meta["recipe"] == "neuroplast run toy --quick"

    cfg = json.loads((out / "config.json").read_text())
    assert cfg == {"steps": 60, "lr": 0.02, "hidden": [8], "dropout": 0.1, "fail_claim": False,
                   "site": "net.*", "label": "toy"}

    metrics = _lines(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, 61))
    summary = json.loads((out / "summary.json").read_text())
    # summary values are the study's own numbers: loss_every_10 is every 10th logged loss
    assert summary["loss_every_10"] == [m["loss"] for m in metrics][::10]
    assert summary["final_loss"] == pytest.approx(sum(m["loss"] for m in metrics[-10:]) / 10, rel=1e-12)
    assert isinstance(summary["full_loss"], float)  # a 0-d tensor became a JSON number

    claims = json.loads((out / "claims.json").read_text())
    assert [c["name"] for c in claims] == ["loss-drops", "flag-set"]
    ratio = summary["final_loss"] / summary["initial_loss"]
    assert claims[0]["value"] == pytest.approx(ratio) and claims[0]["holds"] is (ratio < 0.5)
    assert claims[1] == {"name": "flag-set", "value": 1.0, "holds": True, "error": None,
                         "statement": "holds unless fail_claim is set", "op": ">=", "threshold": 0.5}

    assert (out / "figures" / "loss.png").read_bytes().startswith(PNG_MAGIC)
    # only the newest checkpoint is kept
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000060"]
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_same_seed_same_summary_other_seed_differs(toy, tmp_path):
    a = run_study("toy", out=tmp_path / "a", quick=True, seed=3)
    b = run_study("toy", out=tmp_path / "b", quick=True, seed=3)
    c = run_study("toy", out=tmp_path / "c", quick=True, seed=4)
    assert a == b
    assert a["final_loss"] != c["final_loss"]


def test_set_overrides_are_parsed_by_field_type(toy, tmp_path):
    out = tmp_path / "r"
    code = main(["run", "toy", "--set", "steps=15", "--set", "hidden=3,5", "--set", "fail_claim=yes",
                 "--set", "label=a=b", "--set", "lr=0.01", "--out", str(out)])
    assert code == 0  # a claim that does not hold does not fail a run
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["steps"] == 15 and cfg["hidden"] == [3, 5] and cfg["fail_claim"] is True
    assert cfg["label"] == "a=b" and cfg["lr"] == 0.01
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shape"] == {"hidden": [3, 5], "steps": 15}
    claims = {c["name"]: c for c in json.loads((out / "claims.json").read_text())}
    assert claims["flag-set"]["holds"] is False and claims["flag-set"]["value"] == 0.0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 15


@dataclass
class _TypesConfig:
    n: int = 1
    x: float = 0.5
    flag: bool = False
    name: str = "a"
    dims: tuple[int, ...] = (1, 2)
    pair: tuple[float, float] = (0.0, 1.0)
    widths: list[float] = (1.0,)  # type: ignore[assignment]
    maybe: int | None = None
    mode: Literal["fast", "slow"] = "fast"


class _TypesStudy(Study):
    key = "types-only"
    Config = _TypesConfig


@pytest.mark.parametrize(
    "item, name, value",
    [
        ("n=-3", "n", -3),
        ("x=1e-3", "x", 1e-3),
        ("x=2", "x", 2.0),
        ("flag=TRUE", "flag", True),
        ("flag=0", "flag", False),
        ("name= spaced ", "name", " spaced "),
        ("dims=4, 5,6", "dims", (4, 5, 6)),
        ("dims=", "dims", ()),
        ("pair=0.5,2", "pair", (0.5, 2.0)),
        ("widths=1.5,2", "widths", [1.5, 2.0]),
        ("maybe=none", "maybe", None),
        ("maybe=7", "maybe", 7),
        ("mode=slow", "mode", "slow"),
    ],
)
def test_parse_sets_by_type(item, name, value):
    parsed = parse_sets(_TypesStudy(), [item])
    assert parsed == {name: value} and type(parsed[name]) is type(value)


@pytest.mark.parametrize(
    "item, words",
    [
        ("n=1.5", "n expects an int"),
        ("x=abc", "x expects a float"),
        ("x=nan", "finite"),
        ("flag=maybe", "flag expects a bool"),
        ("dims=1,x", "dims expects an int"),
        ("pair=1,2,3", "expects 2 comma-separated"),
        ("maybe=x", "maybe expects"),
        ("mode=medium", "one of fast, slow"),
        ("nope=1", "no config field 'nope'"),
        ("n", "name=value"),
    ],
)
def test_parse_sets_rejects_bad_values(item, words):
    with pytest.raises(NeuroplastUsageError, match=words):
        parse_sets(_TypesStudy(), [item])


def _assert_usage_error(code, capsys, out):
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuroplast: error: "), err
    assert "Traceback" not in err
    assert not out.exists()
    return lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "no-such-study"], "unknown study 'no-such-study'"),
        (["run", "tyo"], "did you mean toy"),
        (["run", "toy", "--set", "stepz=3"], "no config field 'stepz'"),
        (["run", "toy", "--set", "steps=abc"], "steps expects an int"),
        (["run", "toy", "--set", "hidden=4,x"], "hidden expects an int"),
        (["run", "toy", "--set", "fail_claim=maybe"], "expects a bool"),
        (["run", "toy", "--set", "steps"], "name=value"),
        (["run", "toy", "--set", "lr=-1"], "lr must be > 0"),  # Config.__post_init__
        (["run", "toy", "--set", "steps=0"], "steps must be >= 1"),  # Study.validate hook
        (["run", "toy", "--set", "site=encoder.*"], "site pattern 'encoder.*' matches no module"),  # in run()
        (["run", "toy", "--seeds", "0-2", "--set", "site=encoder.*"], "matches no module"),
        (["run", "toy", "--seeds", "4-2"], "runs backwards"),
        (["run", "toy", "--seeds", "a"], "--seeds expects"),
        (["run", "toy", "--seeds", "1,1"], "twice"),
        (["run", "toy", "--jobs", "0"], "--jobs"),
        (["run", "toy", "--backend", "nowhere"], "--backend 'nowhere' is not available"),
        (["run"], "give a study KEY"),
        (["run", "--resume", "{out}"], "no such directory"),
        (["run", "toy", "--quick", "--resume", "{out}"], "cannot be combined with --quick"),
    ],
)
def test_bad_input_exits_2_and_leaves_nothing(toy, tmp_path, capsys, args, words):
    out = tmp_path / "out"
    args = [a.replace("{out}", str(out)) for a in args]
    if "--resume" not in args:
        args += ["--out", str(out)]
    code = main(args) if "--jobs" not in args else _exit_code(args)
    line = _assert_usage_error(code, capsys, out)
    assert words in line


def _exit_code(args):
    with pytest.raises(SystemExit) as info:  # argparse rejects it
        main(args)
    return info.value.code


def test_resume_flag_clashes_and_quick(toy, tmp_path, capsys):
    out = tmp_path / "r"
    assert run_study("toy", out=out, sets=["steps=5"])
    before = sorted(p.name for p in out.iterdir())
    code = main(["run", "--resume", str(out), "--set", "steps=9"])
    assert code == 2 and "cannot be combined with --set" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before


def test_existing_nonempty_out_dir_is_refused(toy, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["run", "toy", "--quick", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_empty_existing_out_dir_is_used_and_emptied_again_on_bad_input(toy, tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["run", "toy", "--set", "site=nothing", "--out", str(out)]) == 2
    assert out.is_dir() and not any(out.iterdir())


def test_bad_checkpoint_every_env(toy, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NEUROPLAST_CHECKPOINT_EVERY", "often")
    out = tmp_path / "r"
    _assert_usage_error(main(["run", "toy", "--quick", "--out", str(out)]), capsys, out)


def test_should_checkpoint_and_checkpoint_every(toy, tmp_path):
    run = Run(tmp_path, seed=0, checkpoint_every=10)
    assert [s for s in range(0, 35) if run.should_checkpoint(s)] == [10, 20, 30]
    assert not any(Run(tmp_path, seed=0, checkpoint_every=0).should_checkpoint(s) for s in range(100))
    out = tmp_path / "r"
    assert main(["run", "toy", "--set", "steps=12", "--checkpoint-every", "4", "--out", str(out)]) == 0
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000012"]
    assert json.loads((out / "run.json").read_text())["last_checkpoint_step"] == 12


def test_run_log_converts_values_and_rejects_step_kwarg(tmp_path):
    run = Run(tmp_path, seed=0)
    run.log(1, loss=torch.tensor(0.25), acc=float("nan"), per_layer=torch.tensor([1.0, 2.0]), n=3)
    with pytest.raises(TypeError, match="step"):
        run.log(2, step=5)
    with pytest.raises(TypeError, match="set"):
        run.log(3, bad={1, 2})
    run.close()
    expected = {"step": 1, "loss": 0.25, "acc": None, "per_layer": [1.0, 2.0], "n": 3}
    assert _lines(tmp_path / "metrics.jsonl") == [expected]


def test_generator_is_seeded_from_the_run_seed(tmp_path):
    a, b = Run(tmp_path, seed=7).generator, torch.Generator().manual_seed(7)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))


def test_save_figure_rejects_paths(tmp_path):
    run = Run(tmp_path, seed=0)
    fig = run.figure()
    for bad in ("../x", "a/b", "loss.png", ""):
        with pytest.raises(ValueError, match="save_figure"):
            run.save_figure(bad, fig)
    assert run.save_figure("ok", fig).read_bytes().startswith(PNG_MAGIC)


@dataclass(frozen=True)
class _BrokenConfig:
    kind: str = "set"

    @classmethod
    def quick(cls):
        return cls()


class _BrokenStudy(Study):
    key = "broken-summary"
    title = "returns a summary that is not JSON"
    Config = _BrokenConfig

    def run(self, cfg, run):
        run.log(1, x=1.0)
        if cfg.kind == "set":
            return {"values": {1, 2}}
        return {"ok": math.inf}


@pytest.fixture
def broken(toy):
    register(_BrokenStudy)  # the toy fixture restores the registry afterwards


def test_study_failure_exits_1_and_records_the_error(broken, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "broken-summary", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "summary['values']" in err  # a study bug shows its traceback
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "failed" and "TypeError" in meta["error"]
    assert not (out / "summary.json").exists()


def test_non_finite_summary_values_become_null(broken, tmp_path):
    summary = run_study("broken-summary", out=tmp_path / "r", sets=["kind=inf"])
    assert summary == {"ok": None}
    assert json.loads((tmp_path / "r" / "summary.json").read_text()) == {"ok": None}


def test_run_timing_writes_and_merges_timings_json(tmp_path):
    run = Run(tmp_path, seed=0)
    assert run.timings() == {} and not (tmp_path / "timings.json").exists()
    run.timing("setup", 0.5)
    run.timing("arms", {"a": {"seconds_per_task": [0.1, 0.2]}})
    run.timing("arms", {"b": {"seconds_per_task": [0.3]}, "a": {"mean": 0.15}})  # merged key by key
    run.timing("setup", 0.25)  # a number is replaced
    expected = {"setup": 0.25, "arms": {"a": {"seconds_per_task": [0.1, 0.2], "mean": 0.15},
                                        "b": {"seconds_per_task": [0.3]}}}
    assert json.loads((tmp_path / "timings.json").read_text()) == expected == run.timings()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # written atomically
    with pytest.raises(ValueError, match="run.timing"):
        run.timing("", 1.0)
    with pytest.raises(TypeError, match="run.timing"):
        run.timing("x", "1 s")
    with pytest.raises(TypeError, match="run.timing"):
        run.timing("x", True)
    assert run.timings() == expected


@dataclass(frozen=True)
class _TimedConfig:
    steps: int = 6
    kill_at: int = 0

    @classmethod
    def quick(cls):
        return cls()


class _TimedStudy(Study):
    """Counts steps with a checkpoint after each and records a wall-clock time per step."""

    key = "timed"
    title = "records timings"
    Config = _TimedConfig

    def run(self, cfg, run):
        restored = run.restore()
        start, total = (0, 0.0) if restored is None else (restored[0], float(restored[1]["total"]))
        run.timing(f"segment_from_step_{start}", 0.001)
        for step in range(start + 1, cfg.steps + 1):
            if step == cfg.kill_at and not run.resumed:
                raise KeyboardInterrupt
            x = float(torch.rand((), generator=run.generator))
            total += x
            run.log(step, x=x)
            run.timing("steps", {str(step): 0.001 * step})
            run.checkpoint(step, {"total": total})
        return {"total": total}


def test_timings_json_is_outside_the_summary_and_survives_a_resume(toy, tmp_path):
    from neuroplast.runner.run import RunSpec, config_to_json, execute, make_config

    register(_TimedStudy)  # the toy fixture restores the registry afterwards
    study = _TimedStudy()

    def spec(path, resume, sets):
        cfg = make_config(study, sets=sets)
        return RunSpec("timed", __name__, config_to_json(cfg), 0, str(path), resume, checkpoint_every=1)

    full = execute(spec(tmp_path / "full", False, []))
    assert full.status == "done", full.error
    assert set(full.summary) == set(json.loads((tmp_path / "full" / "summary.json").read_text())) == {"total"}
    full_t = json.loads((tmp_path / "full" / "timings.json").read_text())
    assert full_t == {"segment_from_step_0": 0.001, "steps": {str(s): 0.001 * s for s in range(1, 7)}}

    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        execute(spec(killed, False, ["kill_at=4"]))
    assert json.loads((killed / "timings.json").read_text())["steps"] == {"1": 0.001, "2": 0.002, "3": 0.003}
    resumed = execute(spec(killed, True, ["kill_at=4"]))
    assert resumed.status == "done", resumed.error
    assert resumed.summary == full.summary  # the full summary, nothing removed
    assert (killed / "summary.json").read_text() == (tmp_path / "full" / "summary.json").read_text()
    timings = json.loads((killed / "timings.json").read_text())
    # the first segment's records survive the resume and the second segment's are merged in
    assert timings == {"segment_from_step_0": 0.001, "segment_from_step_3": 0.001,
                       "steps": {str(s): 0.001 * s for s in range(1, 7)}}

    execute(spec(killed, False, []))  # a fresh run in the same directory starts its timings afresh
    assert json.loads((killed / "timings.json").read_text()) == full_t


class _ThreadsStudy(_TimedStudy):
    """Reports the intra-op thread count it runs with; fails when asked to."""

    key = "threads"
    threads = 1

    def run(self, cfg, run):
        if cfg.kill_at:
            raise RuntimeError("study error")
        return {"threads": torch.get_num_threads()}


def test_runner_gives_a_study_its_threads_and_restores_them(toy, tmp_path):
    from neuroplast.runner.run import RunSpec, config_to_json, execute, make_config

    register(_ThreadsStudy)
    study = _ThreadsStudy()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for sets, status in (([], "done"), (["kill_at=1"], "failed")):
            spec = RunSpec("threads", __name__, config_to_json(make_config(study, sets=sets)), 0,
                           str(tmp_path / status), False)
            result = execute(spec)
            assert result.status == status
            assert torch.get_num_threads() == 2  # restored after success and after an error
        assert json.loads((tmp_path / "done" / "summary.json").read_text()) == {"threads": 1}
    finally:
        torch.set_num_threads(before)
