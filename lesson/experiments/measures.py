"""How good and how calibrated an experiment's predicted probabilities of default are."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.evaluate import binary_pair, classification_metrics, expected_calibration_error

# "Confidently wrong": a predicted default probability below this for a loan that defaulted, or
# above 1 minus it for one that was repaid.
CONFIDENT = 0.1


def confidently_wrong_share(y_true: Any, probability: Any, threshold: float = CONFIDENT) -> float:
    """Share of rows predicted with probability < threshold for a default, > 1 - threshold for a
    repaid loan."""
    y, p = binary_pair(y_true, probability)
    wrong = ((y == 1) & (p < threshold)) | ((y == 0) & (p > 1.0 - threshold))
    return float(wrong.mean())


def probability_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """ROC AUC, log loss and Brier score (training.evaluate), plus ECE and confidently wrong."""
    return {
        **classification_metrics(y_true, probability),
        "ece": expected_calibration_error(y_true, probability),
        "confidently_wrong": confidently_wrong_share(y_true, probability),
    }
