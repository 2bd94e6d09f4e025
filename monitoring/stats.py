"""The statistics of back-testing: discrimination with intervals, calibration with tests.

Labels are 0/1 (1 = defaulted) and scores predicted probabilities of default (higher = riskier).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def _midranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank."""
    return stats.rankdata(values, method="average")


@dataclass(frozen=True)
class DeLong:
    """AUCs of ``k`` scorers on the same rows, and their covariance (DeLong et al. 1988).

    ``auc``: shape ``(k,)``; ``covariance``: shape ``(k, k)``.
    """

    auc: np.ndarray
    covariance: np.ndarray


def delong(labels: np.ndarray, scores: np.ndarray) -> DeLong:
    """DeLong's estimate of the AUCs of ``scores`` (shape ``(k, n)`` or ``(n,)``) against
    ``labels`` (shape ``(n,)``, 0/1) and of their covariance.

    The structural components come from midranks (Sun & Xu 2014): for a positive ``i``,
    ``V10_i = (R_i - Rpos_i) / n`` with ``R`` its rank among all rows and ``Rpos`` among the
    positives; for a negative ``j``, ``V01_j = 1 - (R_j - Rneg_j) / m``. Then
    ``cov = S10 / m + S01 / n`` (``m`` positives, ``n`` negatives, ``S`` the sample covariances
    of the components). Equal to the definition's O(m·n) sums (tests check it), in O(N log N).
    Raises ValueError unless both classes are present.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    m, n = int(labels.sum()), int((~labels).sum())
    if m == 0 or n == 0:
        raise ValueError("DeLong needs both defaulted and repaid rows")
    positives, negatives = scores[:, labels], scores[:, ~labels]
    v10 = np.empty((scores.shape[0], m))
    v01 = np.empty((scores.shape[0], n))
    for r in range(scores.shape[0]):
        ranks = _midranks(np.concatenate([positives[r], negatives[r]]))
        rank_pos, rank_neg = _midranks(positives[r]), _midranks(negatives[r])
        v10[r] = (ranks[:m] - rank_pos) / n
        v01[r] = 1.0 - (ranks[m:] - rank_neg) / m
    auc = v10.mean(axis=1)
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(auc), len(auc)))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(auc), len(auc)))
    return DeLong(auc=auc, covariance=s10 / m + s01 / n)


def auc_interval(
    labels: np.ndarray, scores: np.ndarray, level: float = 0.95
) -> tuple[float, float, float]:
    """ROC AUC and its DeLong confidence interval ``(auc, low, high)``, clipped to [0, 1]."""
    found = delong(labels, scores)
    auc = float(found.auc[0])
    half = stats.norm.ppf(0.5 + level / 2) * float(np.sqrt(max(found.covariance[0, 0], 0.0)))
    return auc, max(auc - half, 0.0), min(auc + half, 1.0)


@dataclass(frozen=True)
class PairedTest:
    """DeLong's paired test of two AUCs on the same rows: ``difference`` = second - first."""

    auc_first: float
    auc_second: float
    difference: float
    standard_error: float
    z: float
    p_value: float  # two-sided
    low: float  # confidence interval of the difference
    high: float


def delong_paired(
    labels: np.ndarray, first: np.ndarray, second: np.ndarray, level: float = 0.95
) -> PairedTest:
    """Whether ``second`` ranks defaults better than ``first`` on the same rows (DeLong's test:
    z = difference / sqrt(var1 + var2 - 2 cov), normal two-sided p-value)."""
    found = delong(labels, np.vstack([first, second]))
    difference = float(found.auc[1] - found.auc[0])
    variance = float(found.covariance[0, 0] + found.covariance[1, 1] - 2 * found.covariance[0, 1])
    error = float(np.sqrt(max(variance, 0.0)))
    if error == 0.0:
        z, p = (0.0, 1.0) if difference == 0.0 else (float(np.sign(difference) * np.inf), 0.0)
    else:
        z = difference / error
        p = float(2 * stats.norm.sf(abs(z)))
    half = float(stats.norm.ppf(0.5 + level / 2)) * error
    return PairedTest(
        float(found.auc[0]),
        float(found.auc[1]),
        difference,
        error,
        float(z),
        p,
        difference - half,
        difference + half,
    )


def ks_statistic(labels: np.ndarray, scores: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score distributions of defaulted and
    repaid rows (= max(TPR - FPR) over thresholds)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    return float(stats.ks_2samp(scores[labels], scores[~labels]).statistic)


def bootstrap_interval(
    labels: np.ndarray,
    scores: np.ndarray,
    statistic: object,
    resamples: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(labels, scores)``, resampling rows with
    replacement, stratified by label (each resample keeps both classes and their counts)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    positive, negative = np.flatnonzero(labels), np.flatnonzero(~labels)
    values = np.empty(resamples)
    for b in range(resamples):
        rows = np.concatenate(
            [rng.choice(positive, positive.size), rng.choice(negative, negative.size)]
        )
        values[b] = statistic(labels[rows], scores[rows])  # type: ignore[operator]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class BandCalibration:
    """Predicted against observed default rate in one risk band (rows with outcomes only)."""

    band: str
    loans: int
    defaults: int
    predicted_rate: float  # mean predicted probability of default
    observed_rate: float
    p_value: float  # two-sided exact binomial test of defaults ~ Binomial(loans, predicted_rate)


def band_calibration(
    bands: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
) -> list[BandCalibration]:
    """One :class:`BandCalibration` per band present, in order of mean predicted rate."""
    bands = np.asarray(bands)
    labels = np.asarray(labels).astype(bool)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    out = []
    for band in np.unique(bands):
        rows = bands == band
        loans, defaults = int(rows.sum()), int(labels[rows].sum())
        predicted = float(probabilities[rows].mean())
        p_value = float(
            stats.binomtest(defaults, loans, min(max(predicted, 1e-12), 1 - 1e-12)).pvalue
        )
        out.append(
            BandCalibration(str(band), loans, defaults, predicted, defaults / loans, p_value)
        )
    return sorted(out, key=lambda b: b.predicted_rate)


def observed_to_expected(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Observed defaults over expected (the sum of predicted probabilities); NaN with none."""
    expected = float(np.sum(probabilities))
    return float(np.sum(labels)) / expected if expected > 0 else float("nan")
