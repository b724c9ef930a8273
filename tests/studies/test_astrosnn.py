"""Smoke, task, determinism and resume tests of the astrosnn study at a tiny budget."""

from __future__ import annotations

import json

import pytest
import torch

from neuroplast.studies.astrosnn import Config, SpikingRecall, build, delayed_recall_batch, n_params
from neuroplast.testing import (
    check_study_determinism,
    check_study_registered,
    check_study_rejects,
    check_study_resume,
    check_study_smoke,
)

KEY = "astrosnn"
TINY = ["delays=2,6", "symbols=3", "hidden=12", "groups=4", "steps=6", "batch_size=8", "test_per_delay=16",
        "log_every=3", "cue_len=2", "recall_len=2", "arms=plain,astro,lstm"]


def test_registered_with_paper_metadata():
    study = check_study_registered(KEY, "2312.07625", "C")
    assert {c.name for c in study.claims} == {"astro-beats-plain-longest-delay",
                                              "astro-beats-plain-mean-over-delays"}
    quick = study.Config.quick()
    assert quick.steps < study.Config().steps and {"plain", "astro"} <= set(quick.arms)


def test_delayed_recall_batch_layout():
    cfg = Config(delays=(3, 7), symbols=5, cue_len=2, recall_len=3, distractor_rate=0.0)
    x, y, d = delayed_recall_batch(cfg, 32, torch.Generator().manual_seed(0))
    T = 1 + 7 + 2 + 3
    assert x.shape == (T, 32, 6) and set(d.tolist()) <= {3, 7}
    for b in range(32):
        cue_t = torch.nonzero(x[:, b, :5].sum(-1)).flatten()
        assert len(cue_t) == 2 and (x[cue_t, b].argmax(-1) == y[b]).all()  # the cue names the label
        go_t = torch.nonzero(x[:, b, 5]).flatten().tolist()
        assert go_t == list(range(T - 3, T))
        assert go_t[0] - int(cue_t[-1]) - 1 == int(d[b])  # exactly D blank steps in between
    x7, _, d7 = delayed_recall_batch(cfg, 4, torch.Generator().manual_seed(0), delay=7)
    assert (d7 == 7).all() and x7[1:3, :, :5].sum() == 8


def test_distractors_lie_in_the_delay_only_one_symbol_a_step_at_the_set_rate():
    cfg = Config(delays=(3, 7), symbols=5, cue_len=2, recall_len=3, distractor_rate=1.0)
    x, y, d = delayed_recall_batch(cfg, 64, torch.Generator().manual_seed(1))
    T = 1 + 7 + 2 + 3
    for b in range(64):
        onset = 1 + 7 - int(d[b])
        sym = x[:, b, :5]
        assert (sym[:onset] == 0).all() and (sym[T - 3 :] == 0).all()  # nothing before the cue or at go
        assert (sym[onset : onset + 2].argmax(-1) == y[b]).all()  # the cue is untouched
        delay = sym[onset + 2 : T - 3]
        assert len(delay) == int(d[b]) and (delay.sum(-1) == 1).all()  # rate 1: one symbol every step
    # rate p: the distractor count over the delay steps is Binomial(n_steps, p)
    p, n = 0.1, 4000
    cfg = Config(delays=(20,), symbols=4, cue_len=4, recall_len=2, distractor_rate=p)
    x, y, _ = delayed_recall_batch(cfg, n, torch.Generator().manual_seed(2), delay=20)
    hits = float(x[1 + 4 : 1 + 4 + 20, :, :4].sum())
    steps = 20 * n
    assert abs(hits / steps - p) < 4 * (p * (1 - p) / steps) ** 0.5
    labels = torch.stack([x[1:5, i, :4].sum(0).argmax() for i in range(8)])
    assert torch.equal(labels, y[:8])  # the cue block still names the label
    # rate rule of both settings: cue_len / max(delays)
    for c in (Config(), Config.quick()):
        assert c.distractor_rate == pytest.approx(c.cue_len / max(c.delays))


def test_parameter_counts_match_within_two_percent():
    for cfg in (Config(), Config.quick()):
        plain, astro = n_params(build(cfg, "plain")), n_params(build(cfg, "astro"))
        K, H = cfg.symbols, cfg.hidden
        assert plain == (K + 1) * H + H + H * H + H * K + K
        assert astro == plain + cfg.groups and astro - plain <= 0.02 * plain
        lstm = n_params(build(cfg, "lstm"))
        assert abs(lstm - plain) <= 0.05 * plain
    assert isinstance(build(Config(), "astro"), SpikingRecall)


def test_smoke_summary_claims_and_figure(tmp_path):
    summary = check_study_smoke(KEY, TINY, tmp_path, figures=["accuracy_vs_delay"])
    assert summary["delays"] == [2, 6] and summary["arms"] == ["plain", "astro", "lstm"]
    for arm in ("plain", "astro", "lstm"):
        accs = summary[arm]["acc_by_delay"]
        assert set(accs) == {"2", "6"} and all(0.0 <= a <= 1.0 for a in accs.values())
        assert summary["params"][arm] == summary[arm]["params"] > 0
    assert summary["params"]["astro"] == summary["params"]["plain"] + 4
    assert len(summary["astro"]["gamma"]) == 4
    gaps = [summary["astro"]["acc_by_delay"][d] - summary["plain"]["acc_by_delay"][d] for d in ("2", "6")]
    assert summary["gap_mean"] == pytest.approx(sum(gaps) / 2)
    run_dir = tmp_path / "run"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["arm"] for r in lines] == ["plain"] * 3 + ["astro"] * 3 + ["lstm"] * 3


TWO_ARMS = [s for s in TINY if not s.startswith("arms")] + ["arms=plain,astro"]


def test_tiny_run_is_deterministic(tmp_path):
    check_study_determinism(KEY, TWO_ARMS, tmp_path, seed=3, other_seed=4)


def test_killed_run_resumes_to_the_same_summary(tmp_path):
    check_study_resume(KEY, TWO_ARMS, tmp_path, kill_at=5)  # inside the astro arm, after a mid-arm checkpoint


def test_bad_config_is_rejected_before_running(tmp_path):
    check_study_rejects(
        KEY,
        [
            (["hidden=12", "groups=5"], "groups"),
            (["hidden=12", "groups=12", "symbols=2"], "groups"),  # too many astrocytes: > 2% more parameters
            (["arms=plain,lstm"], "arms"),
            (["mode=calcium"], "mode"),
            (["distractor_rate=1.5"], "distractor_rate"),
        ],
        tmp_path,
    )
