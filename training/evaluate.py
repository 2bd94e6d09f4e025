"""Metrics a credit-risk reviewer asks for, computed on predicted probabilities of default.

Convention: a score is a probability of default; an applicant is *approved* when the score is below
the operating threshold and *declined* at or above it. "Positive" means defaulted (bad).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)

ECE_BINS = 10
# Probabilities are clipped this far from 0 and 1 before the log loss, so one overconfident
# mistake cannot make it infinite.
LOG_LOSS_EPSILON = 1e-7


def gini(y_true: np.ndarray, probability: np.ndarray) -> float:
    """The accuracy ratio used in credit scoring: 2·AUC - 1."""
    return 2.0 * float(roc_auc_score(y_true, probability)) - 1.0


def ks_statistic(y_true: np.ndarray, probability: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the score distributions of the
    defaulted and the repaid applicants, i.e. max over thresholds of TPR - FPR."""
    fpr, tpr, _ = roc_curve(y_true, probability)
    return float(np.max(tpr - fpr))


def ks_threshold(y_true: np.ndarray, probability: np.ndarray) -> float:
    """The score at which the KS gap is largest: a neutral operating point when none is given."""
    fpr, tpr, thresholds = roc_curve(y_true, probability)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def binary_pair(y_true: ArrayLike, probability: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes (0 or 1) and predicted probabilities as two flat float64 arrays of one length.

    Raises ``ValueError`` when the lengths differ or there are no rows.
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(probability, dtype=np.float64).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need equally long, non-empty arrays, got {y.shape} and {p.shape}")
    return y, p


@dataclass(frozen=True)
class ReliabilityBins:
    """Rows grouped by predicted probability into (nearly) equal-frequency bins.

    Three float64 / int64 arrays of one length, one entry per non-empty bin in ascending order of
    score: ``predicted`` the mean predicted probability, ``observed`` the observed default rate,
    ``count`` the rows (summing to all rows).
    """

    predicted: np.ndarray
    observed: np.ndarray
    count: np.ndarray


def reliability_bins(
    y_true: ArrayLike, probability: ArrayLike, bins: int = ECE_BINS
) -> ReliabilityBins:
    """The reliability bins of ``probability`` (in [0, 1]) against outcomes ``y_true`` (0 or 1).

    Bins are cut at the quantiles of the predicted probabilities (scikit-learn's
    ``calibration_curve`` with ``strategy="quantile"``), so each holds about ``len / bins`` rows
    wherever the scores crowd together, and tied scores always share a bin. Empty bins (many ties,
    or fewer rows than bins) are left out. Raises ``ValueError`` on mismatched or empty input,
    scores outside [0, 1] or outcomes that are not binary.
    """
    y, p = binary_pair(y_true, probability)
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    count = np.bincount(quantile_bin_ids(p, bins), minlength=bins)
    return ReliabilityBins(predicted=predicted, observed=observed, count=count[count > 0])


def quantile_bin_ids(probability: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """The reliability bin (0 to ``bins - 1``, int64) of each score in a float64 array.

    ``calibration_curve`` returns each bin's means only; the rows in each bin come from the same
    edges and the same assignment as scikit-learn 1.9's (a score equal to an edge belongs to the
    lower bin). A test checks both agree bin by bin.
    """
    edges = np.percentile(probability, np.linspace(0, 1, bins + 1) * 100)
    return np.searchsorted(edges[1:-1], probability)


def expected_calibration_error(
    y_true: ArrayLike, probability: ArrayLike, bins: int = ECE_BINS
) -> float:
    """ECE over the reliability bins: the row-weighted mean of |observed rate - mean score|.

    Same input and errors as :func:`reliability_bins`.
    """
    parts = reliability_bins(y_true, probability, bins)
    return float(np.sum(parts.count * np.abs(parts.observed - parts.predicted)) / parts.count.sum())


def ece_noise_floor(
    probability: np.ndarray, bins: int = ECE_BINS, draws: int = 200, seed: int = 0
) -> float:
    """The ECE a perfectly calibrated model would show on a sample this size, on average.

    Binned ECE is biased upwards by sampling noise: with ~90 rows per bin the observed default
    rate wanders a few points from the true one even when the scores are exact. Outcomes are
    simulated from the scores themselves, so the figure tells a reviewer how much of the measured
    ECE chance alone explains.
    """
    p = np.asarray(probability, dtype=np.float64)
    rng = np.random.default_rng(seed)
    # The bins depend on the scores only, so they are cut once: 0.008 s for 891 rows and 200 draws
    # against 0.37 s calling expected_calibration_error per draw (a test checks both agree).
    ids = quantile_bin_ids(p, bins)
    count = np.bincount(ids, minlength=bins)
    filled = count > 0
    count = count[filled]
    means = np.bincount(ids, weights=p, minlength=bins)[filled] / count
    errors = np.empty(draws)
    for draw in range(draws):
        y = rng.random(p.size) < p
        observed = np.bincount(ids, weights=y, minlength=bins)[filled] / count
        errors[draw] = np.sum(count * np.abs(observed - means)) / p.size
    return float(errors.mean())


def threshold_metrics(
    y_true: np.ndarray, probability: np.ndarray, threshold: float
) -> dict[str, float]:
    """Precision and recall of declining at ``threshold``, approval rate, bad rate if approved."""
    y = np.asarray(y_true).astype(bool)
    declined = np.asarray(probability, dtype=np.float64) >= threshold
    approved = ~declined
    true_positive = float(np.sum(declined & y))
    return {
        "precision": true_positive / declined.sum() if declined.any() else 0.0,
        "recall": true_positive / y.sum() if y.any() else 0.0,
        "approval_rate": float(approved.mean()),
        "bad_rate_approved": float(y[approved].mean()) if approved.any() else 0.0,
    }


def classification_metrics(
    y_true: np.ndarray, probability: np.ndarray, threshold: float | None = None
) -> dict[str, float]:
    """Ranking, probability and calibration metrics; decision metrics when a threshold is given."""
    y = np.asarray(y_true)
    p = np.clip(np.asarray(probability, dtype=np.float64), LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
    auc = float(roc_auc_score(y, p))
    metrics = {
        "roc_auc": auc,
        "gini": 2.0 * auc - 1.0,
        "ks": ks_statistic(y, p),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
    }
    if threshold is not None:
        metrics |= threshold_metrics(y, p, threshold)
    return metrics
