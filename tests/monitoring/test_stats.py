"""DeLong against the definition's O(m*n) sums, and the figures against sklearn."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

from monitoring.stats import (
    band_calibration,
    delong,
    delong_paired,
    ks_statistic,
    observed_to_expected,
)


def delong_by_definition(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) as written: psi(x, y) = 1 if x > y, 1/2 if equal, else 0."""
    labels = labels.astype(bool)
    v10, v01 = [], []
    for s in scores:
        x, y = s[labels], s[~labels]
        psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    v10, v01 = np.array(v10), np.array(v01)
    covariance = np.cov(v10) / labels.sum() + np.cov(v01) / (~labels).sum()
    return v10.mean(axis=1), np.atleast_2d(covariance)


def test_delong_matches_its_definition_with_ties() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 60)
    first = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: ties
    second = np.round(rng.normal(labels * 0.4, 1.0), 1)
    found = delong(labels, np.vstack([first, second]))
    auc, covariance = delong_by_definition(labels, np.vstack([first, second]))
    np.testing.assert_allclose(found.auc, auc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(found.covariance, covariance, rtol=1e-10, atol=1e-15)
    assert found.auc[0] == pytest.approx(roc_auc_score(labels, first), abs=1e-12)


def test_paired_test_on_a_worked_example() -> None:
    # Five defaulted and five repaid loans; the first scorer ranks them perfectly but for one
    # pair, the second swaps three. By hand: AUC1 = 24/25, AUC2 = 19/25 (see the definition).
    labels = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    first = np.array([0.9, 0.8, 0.7, 0.6, 0.35, 0.4, 0.3, 0.2, 0.1, 0.05])
    second = np.array([0.9, 0.3, 0.7, 0.2, 0.5, 0.4, 0.8, 0.1, 0.6, 0.05])
    test = delong_paired(labels, first, second)
    assert test.auc_first == pytest.approx(24 / 25)
    assert test.auc_second == pytest.approx(roc_auc_score(labels, second))
    auc, cov = delong_by_definition(labels, np.vstack([first, second]))
    error = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert test.standard_error == pytest.approx(error)
    assert test.z == pytest.approx((auc[1] - auc[0]) / error)
    assert test.p_value == pytest.approx(2 * stats.norm.sf(abs(test.z)))
    assert test.difference < 0


def test_the_same_scorer_twice_differs_by_nothing() -> None:
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    scores = np.linspace(0, 1, 8)
    test = delong_paired(labels, scores, scores)
    assert (test.difference, test.p_value) == (0.0, 1.0)


def test_ks_is_the_largest_gap_between_true_and_false_positive_rates() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(labels * 0.5, 1.0)
    fpr, tpr, _ = roc_curve(labels, scores)
    assert ks_statistic(labels, scores) == pytest.approx(np.max(tpr - fpr), abs=1e-12)


def test_calibration_per_band_and_overall() -> None:
    bands = np.array(["low"] * 4 + ["high"] * 4)
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    p = np.array([0.1, 0.1, 0.2, 0.2, 0.6, 0.7, 0.7, 0.8])
    low, high = band_calibration(bands, labels, p)
    assert (low.band, low.loans, low.defaults) == ("low", 4, 1)
    assert low.predicted_rate == pytest.approx(0.15)
    assert low.p_value == pytest.approx(stats.binomtest(1, 4, 0.15).pvalue)
    assert high.observed_rate == 0.75
    assert observed_to_expected(labels, p) == pytest.approx(4 / 3.4)
