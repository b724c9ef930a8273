"""The HTML report: self-contained, escaped, figures embedded byte for byte, claims per seed."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import pytest

from neuroplast.cli import main
from neuroplast.runner import Run, run_study


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    p = _Collect()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


@pytest.fixture
def sweep(toy, tmp_path):
    out = tmp_path / "sweep"
    label = "<script>alert('x')</script>"
    args = ["run", "toy", "--quick", "--seeds", "0-1", "--set", f"label={label}", "--out", str(out)]
    assert main(args) == 0
    return out, label


def test_report_is_self_contained_and_escaped(sweep, capsys):
    out, label = sweep
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    path = out / "report.html"
    assert capsys.readouterr().out.strip() == str(path)
    html_text = path.read_text(encoding="utf-8")
    parsed = _parse(path)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "iframe" not in parsed.tags
    # every src is inline data; nothing is fetched
    srcs = [v for tag, k, v in parsed.attrs if k == "src"]
    assert srcs and all(v.startswith("data:image/png;base64,") for v in srcs)
    assert "<b>" not in html_text and label not in html_text  # markup from titles/configs is escaped
    text = "".join(parsed.text)
    assert "Toy regression <b>& 'quotes'</b>" in text  # ... and reads back as the original text
    assert json.dumps(label) in text


def test_report_embeds_each_seed_figure_and_claim_values(sweep):
    out, _ = sweep
    main(["report", str(out)])
    parsed = _parse(out / "report.html")
    images = [base64.b64decode(v.split(",", 1)[1]) for tag, k, v in parsed.attrs if k == "src"]
    for seed in (0, 1):
        assert (out / f"seed-{seed}" / "figures" / "loss.png").read_bytes() in images
    text = "".join(parsed.text)
    for seed in (0, 1):
        for claim in json.loads((out / f"seed-{seed}" / "claims.json").read_text()):
            assert f"{claim['value']:.6g}" in text
        summary = json.loads((out / f"seed-{seed}" / "summary.json").read_text())
        assert f"{summary['full_loss']:.6g}" in text
    assert "seed 0" in text and "seed 1" in text and "neuroplast run toy --quick --seeds 0-1 --set" in text
    assert "loss-drops" in text and "training cuts the loss at least in half" in text
    assert ("a", "href", "https://arxiv.org/abs/0000.00000") in parsed.attrs


def test_report_of_a_verify_dir_states_the_verdict(toy, tmp_path):
    out = tmp_path / "v"
    assert main(["verify", "toy", "toy-failing", "--quick", "--seeds", "0", "--out", str(out)]) == 1
    main(["report", str(out)])
    text = "".join(_parse(out / "report.html").text)
    assert "Some claims do not hold" in text
    assert text.count("does not hold") >= 1 and "toy-failing" in text


def test_report_shows_unfinished_runs(toy, tmp_path, monkeypatch):
    class Killed(BaseException):
        pass

    original = Run.log

    def log(self, step, **m):
        original(self, step, **m)
        if step == 15:
            raise Killed

    monkeypatch.setattr(Run, "log", log)
    with pytest.raises(Killed):
        run_study("toy", out=tmp_path / "r", quick=True)
    assert main(["report", str(tmp_path / "r")]) == 0
    text = "".join(_parse(tmp_path / "r" / "report.html").text)
    assert "running" in text and "No finished runs yet" in text


def test_report_of_a_directory_without_runs_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("hi")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"neuroplast: error: report: no neuroplast run directories .*\n", err)
    assert not (tmp_path / "report.html").exists()
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_report_shows_timings_json_when_present(toy, tmp_path):
    out = tmp_path / "r"
    run_study("toy", out=out, quick=True)
    main(["report", str(out)])
    text = "".join(_parse(out / "report.html").text)
    assert "Timings" not in text  # no timings.json, no table
    Run(out, seed=0).timing("arms", {"pmnist/finetune": {"mean_seconds_per_task": 0.123456789}})
    Run(out, seed=0).timing("setup", 2.5)
    main(["report", str(out)])
    text = "".join(_parse(out / "report.html").text)
    assert "Timings" in text and "not part of the reproducibility guarantee" in text
    assert "arms.pmnist/finetune.mean_seconds_per_task" in text and "0.123457" in text
    assert "setup" in text and "2.5" in text
    (out / "timings.json").write_text("{not json")
    main(["report", str(out)])
    text = "".join(_parse(out / "report.html").text)
    assert "timings.json unreadable" in text  # noted with the run, the report still renders
