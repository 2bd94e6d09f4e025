"""Test-split metrics of a probability model."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score


def classification_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """ROC AUC, log loss and Brier score of predicted default probabilities."""
    probability = np.clip(np.asarray(probability, dtype=np.float64), 1e-7, 1 - 1e-7)
    return {
        "roc_auc": float(roc_auc_score(y_true, probability)),
        "log_loss": float(log_loss(y_true, probability, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, probability)),
    }
