"""ACC / BWT / FWT / forgetting on hand-made accuracy matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuroplast.metrics.continual import acc, bwt, continual_summary, forgetting, fwt, heatmap, last_trained

# R[i, j]: accuracy on task j after training task i (3 tasks), worked by hand below.
R = [
    [90.0, 12.0, 9.0],
    [80.0, 95.0, 11.0],
    [70.0, 85.0, 93.0],
]


def test_hand_worked_matrix():
    assert acc(R) == pytest.approx((70 + 85 + 93) / 3)
    # BWT (GPM): mean_{j<T} R[T, j] - R[j, j] = ((70 - 90) + (85 - 95)) / 2
    assert bwt(R) == pytest.approx(-15.0)
    # forgetting: max over earlier rows minus final: task0 max(90, 80) - 70 = 20; task1 95 - 85 = 10
    assert forgetting(R) == pytest.approx(15.0)
    # FWT with b = (10, 10, 10): ((12 - 10) + (11 - 10)) / 2
    assert fwt(R, [10.0, 10.0, 10.0]) == pytest.approx(1.5)


def test_forgetting_uses_the_best_earlier_accuracy_not_the_diagonal():
    R2 = [[50.0, 0, 0], [60.0, 90.0, 0], [55.0, 80.0, 70.0]]
    assert forgetting(R2) == pytest.approx(((60 - 55) + (90 - 80)) / 2)
    assert bwt(R2) == pytest.approx(((55 - 50) + (80 - 90)) / 2)


def test_partly_finished_run_uses_the_last_complete_row():
    nan = math.nan
    P = [[90.0, nan, nan], [80.0, 95.0, nan], [nan, nan, nan]]
    assert last_trained(P) == 1
    assert acc(P) == pytest.approx(87.5)
    assert bwt(P) == pytest.approx(-10.0)
    s = continual_summary(torch.tensor(P))
    assert s["tasks_done"] == 2 and s["acc"] == pytest.approx(87.5) and s["fwt"] is None


def test_single_task_has_no_bwt_and_empty_matrix_is_an_error():
    one = [[88.0, math.nan], [math.nan, math.nan]]
    assert acc(one) == 88.0 and math.isnan(bwt(one)) and math.isnan(forgetting(one))
    assert continual_summary(one)["bwt"] is None
    with pytest.raises(ValueError, match="no task has finished"):
        acc([[math.nan, math.nan], [math.nan, math.nan]])


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="square"):
        acc(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one accuracy per task"):
        fwt(R, [1.0, 2.0])


def test_no_forgetting_gives_zero():
    perfect = np.full((4, 4), 97.0)
    assert bwt(perfect) == 0.0 and forgetting(perfect) == 0.0


def test_heatmap_draws_every_entry():
    fig = heatmap(R, title="R")
    ax = fig.axes[0]
    assert len(ax.texts) == 9
    assert {t.get_text() for t in ax.texts} >= {"90.0", "93.0"}
    fig.clf()
