"""Metrics a credit-risk reviewer asks for, computed on predicted probabilities of default.

Convention: a score is a probability of default; an applicant is *approved* when the score is below
the operating threshold and *declined* at or above it. "Positive" means defaulted (bad).
"""

from __future__ import annotations

import numpy as np
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


def equal_frequency_bins(probability: np.ndarray, bins: int = ECE_BINS) -> list[np.ndarray]:
    """Row indices split into ``bins`` groups of (nearly) equal size by ascending score."""
    order = np.argsort(np.asarray(probability, dtype=np.float64), kind="stable")
    return [part for part in np.array_split(order, min(bins, len(order))) if part.size]


def expected_calibration_error(
    y_true: np.ndarray, probability: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE over equal-frequency bins: the row-weighted mean of |observed rate - mean score|."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    total = sum(
        part.size * abs(y[part].mean() - p[part].mean()) for part in equal_frequency_bins(p, bins)
    )
    return float(total / len(p))


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
    parts = equal_frequency_bins(p, bins)
    means = np.array([p[part].mean() for part in parts])
    sizes = np.array([part.size for part in parts])
    errors = np.empty(draws)
    for draw in range(draws):
        y = rng.random(p.size) < p
        observed = np.array([y[part].mean() for part in parts])
        errors[draw] = np.sum(sizes * np.abs(observed - means)) / p.size
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
