import itertools

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from training.evaluate import (
    classification_metrics,
    ece_noise_floor,
    equal_frequency_bins,
    expected_calibration_error,
    gini,
    ks_statistic,
    ks_threshold,
    threshold_metrics,
)

Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8])


def random_scores(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, size=n)
    y = (rng.random(n) < p).astype(int)
    return y, p


def test_gini_is_two_auc_minus_one_by_hand() -> None:
    # Of the four (default, repaid) pairs, three are ranked correctly: AUC 0.75, Gini 0.5.
    assert gini(Y, P) == pytest.approx(0.5)


def test_ks_by_hand_and_against_scipy() -> None:
    # Repaid scores {0.1, 0.4}, defaulted {0.35, 0.8}: the CDFs are furthest apart (0.5) at 0.1.
    assert ks_statistic(Y, P) == pytest.approx(0.5)
    y, p = random_scores()
    expected = ks_2samp(p[y == 1], p[y == 0]).statistic
    assert ks_statistic(y, p) == pytest.approx(expected)


def test_ks_threshold_is_where_the_gap_is_largest() -> None:
    y, p = random_scores()
    cut = ks_threshold(y, p)
    declined = p >= cut
    gap = declined[y == 1].mean() - declined[y == 0].mean()
    assert gap == pytest.approx(ks_statistic(y, p))


def test_ece_by_hand_with_equal_frequency_bins() -> None:
    # Two bins of two rows: scores {0.1, 0.2} with no default, {0.6, 0.8} with one.
    y = np.array([0, 0, 1, 0])
    p = np.array([0.1, 0.2, 0.6, 0.8])
    # |0 - 0.15| and |0.5 - 0.7|, each weighted by half the rows.
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.5 * 0.15 + 0.5 * 0.2)


def test_ece_bins_are_equal_frequency_and_cover_every_row() -> None:
    p = np.random.default_rng(1).random(1003)
    parts = equal_frequency_bins(p, 10)
    assert len(parts) == 10
    assert {part.size for part in parts} <= {100, 101}
    assert sorted(np.concatenate(parts)) == list(range(1003))
    # Bins are ordered by score: every score in one bin is at most every score in the next.
    for low, high in itertools.pairwise(parts):
        assert p[low].max() <= p[high].min()


def test_ece_is_zero_when_each_bin_matches_its_rate() -> None:
    y = np.array([0, 0, 0, 1] * 5 + [1, 1, 1, 0] * 5)
    p = np.array([0.25] * 20 + [0.75] * 20)
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.0)


def test_ece_noise_floor_matches_a_simulation_of_a_calibrated_model() -> None:
    rng = np.random.default_rng(5)
    p = rng.beta(2, 5, size=900)
    simulated = np.mean(
        [expected_calibration_error((rng.random(p.size) < p).astype(int), p) for _ in range(300)]
    )
    assert ece_noise_floor(p, draws=300, seed=1) == pytest.approx(simulated, rel=0.1)
    # More rows, less noise.
    assert ece_noise_floor(np.tile(p, 10)) < ece_noise_floor(p) / 2


def test_threshold_metrics_by_hand() -> None:
    # Declined (p >= 0.38): rows 2 and 4 -> one default caught of two; approved: rows 1 and 3.
    out = threshold_metrics(Y, P, 0.38)
    assert out == {
        "precision": 0.5,
        "recall": 0.5,
        "approval_rate": 0.5,
        "bad_rate_approved": 0.5,
    }


def test_classification_metrics_agree_with_scikit_learn() -> None:
    y, p = random_scores()
    metrics = classification_metrics(y, p, threshold=0.3)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert metrics["gini"] == pytest.approx(2 * roc_auc_score(y, p) - 1)
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, p))
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, p))
    assert metrics["ece"] == pytest.approx(expected_calibration_error(y, p))
    for key in ("precision", "recall", "approval_rate", "bad_rate_approved"):
        assert key in metrics
    assert "precision" not in classification_metrics(y, p)
