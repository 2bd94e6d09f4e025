import itertools

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from training.evaluate import (
    classification_metrics,
    ece_noise_floor,
    expected_calibration_error,
    gini,
    ks_statistic,
    ks_threshold,
    quantile_bin_ids,
    reliability_bins,
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
    parts = reliability_bins(np.zeros(p.size), p, 10)
    assert len(parts.count) == 10
    assert set(parts.count) <= {100, 101}
    assert parts.count.sum() == 1003
    # Bins are ordered by score: every score in one bin is at most every score in the next.
    ids = quantile_bin_ids(p, 10)
    for low, high in itertools.pairwise(range(10)):
        assert p[ids == low].max() <= p[ids == high].min()


@pytest.mark.parametrize("n", [20, 891, 1003, 1972])
def test_reliability_bins_are_calibration_curves_bin_by_bin(n: int) -> None:
    # The counts come from our own assignment, the means from scikit-learn's: they must describe
    # the same bins. Scores rounded to two places make many ties, some on the bin edges.
    rng = np.random.default_rng(n)
    p = np.round(rng.beta(2, 5, size=n), 2)
    y = (rng.random(n) < p).astype(int)
    parts = reliability_bins(y, p)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    np.testing.assert_array_equal(parts.observed, observed)
    np.testing.assert_array_equal(parts.predicted, predicted)
    ids = quantile_bin_ids(p)
    filled = [b for b in range(10) if np.any(ids == b)]
    assert list(parts.count) == [int(np.sum(ids == b)) for b in filled]
    np.testing.assert_allclose(parts.predicted, [p[ids == b].mean() for b in filled], rtol=1e-12)
    np.testing.assert_allclose(parts.observed, [y[ids == b].mean() for b in filled], rtol=1e-12)


def test_tied_scores_share_a_bin() -> None:
    p = np.array([0.1] * 15 + [0.3] * 5)
    parts = reliability_bins(np.zeros(20), p, bins=4)
    assert list(parts.count) == [15, 5]


@pytest.mark.parametrize("n", [890, 891, 2670, 2671])
def test_ece_is_the_sorted_split_definition_when_the_rows_divide_evenly(n: int) -> None:
    # With distinct scores and n = 10k or 10k + 1 rows (credit_data's 891-row validation and test
    # splits), the quantile edges cut the sorted scores exactly where np.array_split does, the
    # definition ECE had before it was built on calibration_curve.
    rng = np.random.default_rng(n)
    p = rng.beta(2, 5, size=n)
    y = (rng.random(n) < p).astype(int)
    parts = np.array_split(np.argsort(p, kind="stable"), 10)
    by_split = sum(part.size * abs(y[part].mean() - p[part].mean()) for part in parts) / n
    assert expected_calibration_error(y, p) == pytest.approx(by_split, rel=1e-12, abs=1e-15)


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


def test_ece_noise_floor_is_the_mean_ece_of_simulated_outcomes() -> None:
    # The fast path (bins cut once) against expected_calibration_error on every draw.
    p = np.random.default_rng(7).beta(2, 5, size=300)
    rng = np.random.default_rng(3)
    draws = [expected_calibration_error(rng.random(p.size) < p, p) for _ in range(50)]
    assert ece_noise_floor(p, draws=50, seed=3) == pytest.approx(np.mean(draws), rel=1e-12)


def test_ece_is_zero_when_every_bin_predicts_its_observed_rate():
    # Two equal-frequency bins of 10 rows: predicted 0.2 with 2 defaults, 0.7 with 7.
    probability = np.array([0.2] * 10 + [0.7] * 10)
    y = np.array([1, 1] + [0] * 8 + [1] * 7 + [0] * 3)
    assert expected_calibration_error(y, probability, bins=2) == pytest.approx(0.0)


def test_ece_weights_each_bin_by_its_share_of_rows():
    # Tied scores share a bin: 18 rows predicted 0.1 where none defaulted, 2 predicted 0.55
    # where both did: (18 * 0.1 + 2 * 0.45) / 20.
    probability = np.array([0.1] * 18 + [0.55, 0.55])
    y = np.array([0] * 18 + [1, 1])
    assert expected_calibration_error(y, probability) == pytest.approx((18 * 0.1 + 2 * 0.45) / 20)


def test_ece_bins_have_equal_frequency_not_equal_width():
    # Every probability sits in [0.0, 0.1): equal-width bins would make one bin of all 20 rows.
    probability = np.linspace(0.0, 0.095, 20)
    parts = reliability_bins(np.zeros(20), probability)
    assert len(parts.predicted) == len(parts.observed) == 10
    np.testing.assert_allclose(parts.predicted, probability.reshape(10, 2).mean(axis=1))


def test_ece_of_fewer_rows_than_bins_uses_one_row_per_bin():
    assert expected_calibration_error([1, 0, 1], [0.9, 0.2, 0.6]) == pytest.approx(
        (0.1 + 0.2 + 0.4) / 3
    )


def test_ece_refuses_mismatched_or_empty_input():
    with pytest.raises(ValueError):
        expected_calibration_error([1, 0], [0.5])
    with pytest.raises(ValueError):
        expected_calibration_error([], [])


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
