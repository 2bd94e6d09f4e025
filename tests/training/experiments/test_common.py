"""Calibration measures, progress pacing, gap summaries and charts of the experiments."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from training.experiments.common import (
    confidently_wrong_share,
    expected_calibration_error,
    gap_chart,
    gap_summary,
    learning_curves_chart,
    metric_bars_chart,
    probability_metrics,
    progress_due,
    reliability_chart,
    reliability_points,
)


def test_ece_is_zero_when_every_bin_predicts_its_observed_rate():
    # Two equal-frequency bins of 10 rows: predicted 0.2 with 2 defaults, 0.7 with 7.
    probability = np.array([0.2] * 10 + [0.7] * 10)
    y = np.array([1, 1] + [0] * 8 + [1] * 7 + [0] * 3)
    assert expected_calibration_error(y, probability, bins=2) == pytest.approx(0.0)


def test_ece_weights_each_bin_by_its_share_of_rows():
    # Sorted by probability, 10 bins of 2 rows. All bins predict 0.1 too high except the last,
    # which predicts 0.55 but sees 1.0: (9 * 2 * 0.1 + 2 * 0.45) / 20.
    probability = np.array([0.1] * 18 + [0.55, 0.55])
    y = np.array([0] * 18 + [1, 1])
    assert expected_calibration_error(y, probability) == pytest.approx((18 * 0.1 + 2 * 0.45) / 20)


def test_ece_bins_have_equal_frequency_not_equal_width():
    # Every probability sits in [0.0, 0.1): equal-width bins would make one bin of all 20 rows.
    probability = np.linspace(0.0, 0.095, 20)
    predicted, observed = reliability_points(np.zeros(20), probability)
    assert len(predicted) == len(observed) == 10
    np.testing.assert_allclose(predicted, probability.reshape(10, 2).mean(axis=1))


def test_ece_of_fewer_rows_than_bins_uses_one_row_per_bin():
    assert expected_calibration_error([1, 0, 1], [0.9, 0.2, 0.6]) == pytest.approx(
        (0.1 + 0.2 + 0.4) / 3
    )


def test_ece_refuses_mismatched_or_empty_input():
    with pytest.raises(ValueError):
        expected_calibration_error([1, 0], [0.5])
    with pytest.raises(ValueError):
        expected_calibration_error([], [])


def test_confidently_wrong_counts_both_directions_strictly():
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    p = np.array([0.05, 0.1, 0.95, 0.9, 0.5, 0.5, 0.99, 0.01])
    # Wrong and confident: the default at 0.05 and the repaid loan at 0.95. The thresholds
    # themselves (0.1, 0.9) do not count.
    assert confidently_wrong_share(y, p) == pytest.approx(2 / 8)


def test_probability_metrics_names():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    metrics = probability_metrics(y, rng.uniform(size=200))
    assert {"roc_auc", "log_loss", "brier", "ece", "confidently_wrong"} <= set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())


@pytest.mark.parametrize(
    ("total", "expected"),
    [(2, [1, 2]), (20, list(range(1, 21))), (100, list(range(5, 101, 5))), (7, list(range(1, 8)))],
)
def test_progress_lines_are_paced_and_include_the_last_epoch(total, expected):
    assert [e for e in range(1, total + 1) if progress_due(e, total)] == expected
    assert progress_due(total, total)


def test_progress_of_an_odd_epoch_count_ends_on_the_last_epoch():
    due = [e for e in range(1, 31) if progress_due(e, 30)]
    assert due[-1] == 30 and len(due) <= 21


def test_gap_summary_reads_final_epoch_and_best_test_loss():
    curves = {
        "train_loss": [0.6, 0.4, 0.2],
        "test_loss": [0.62, 0.5, 0.7],
        "train_auc": [0.7, 0.8, 0.95],
        "test_auc": [0.68, 0.78, 0.75],
        "objective": [0.7, 0.5, 0.3],
    }
    summary = gap_summary(curves)
    assert summary["loss_gap"] == pytest.approx(0.5)
    assert summary["auc_gap"] == pytest.approx(0.2)
    assert summary["min_test_loss"] == 0.5
    assert summary["min_test_loss_epoch"] == 2


def test_charts_are_figures_with_one_panel_per_view():
    finals = [
        {"train_loss": 0.3, "test_loss": 0.5, "train_auc": 0.9, "test_auc": 0.8},
        {"train_loss": 0.4, "test_loss": 0.45, "train_auc": 0.85, "test_auc": 0.82},
    ]
    for final in finals:
        final["loss_gap"] = final["test_loss"] - final["train_loss"]
        final["auc_gap"] = final["train_auc"] - final["test_auc"]
    assert len(gap_chart("l2", [0.0, 1e-3], finals).axes) == 3
    curves = {
        name: {k: [0.5, 0.4] for k in ("train_loss", "test_loss", "train_auc", "test_auc")}
        for name in ("a", "b")
    }
    assert len(learning_curves_chart(curves, [("loss", "loss"), ("auc", "AUC")]).axes) == 2
    bars = metric_bars_chart({"a": {"x": 1.0}, "b": {"x": 2.0}}, [("x", "x")])
    assert isinstance(bars, Figure) and len(bars.axes) == 1
    y = np.array([0, 1] * 10)
    assert len(reliability_chart({"a": (y, np.linspace(0.1, 0.9, 20))}).axes) == 1
