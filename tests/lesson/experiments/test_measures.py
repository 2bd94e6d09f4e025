"""Confidently wrong and the experiments' probability metrics."""

import numpy as np
import pytest

from lesson.experiments.measures import confidently_wrong_share, probability_metrics


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
