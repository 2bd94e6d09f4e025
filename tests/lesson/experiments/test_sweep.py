"""The sweeps' summary of a child run's curves."""

import pytest

from lesson.experiments.sweep import gap_summary


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
