"""Keras training with per-epoch metrics logged to the active run.

Per-epoch metrics are measured on the training and the test rows alike, with the network in
inference mode (dropout off) and without the L2 penalty, so that the train-test gap compares like
with like. The loss Keras minimised, penalty and dropout noise included, is logged as
``objective``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import mlflow
import numpy as np
from sklearn.metrics import roc_auc_score

from lesson.experiments.data import CreditSplit
from lesson.experiments.runs import Say
from lesson.losses import binary_cross_entropy
from models.network import import_keras

Measure = Callable[[Any], dict[str, float]]
Curves = dict[str, list[float]]

# Keras clips probabilities to [1e-7, 1 - 1e-7] in its cross-entropy, and so does
# training.evaluate; the per-epoch losses use the same clip so they agree with both.
PROBABILITY_CLIP = 1e-7
PREDICT_BATCH = 8192
# About this many progress lines per child run, whatever the number of epochs.
PROGRESS_LINES = 20


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's outputs in inference mode (dropout off), as float64.

    ``predict_on_batch`` by chunks: ``model.predict`` sets up a data pipeline on every call,
    which costs ten times more than the prediction itself when it runs after every epoch.
    """
    chunks = [
        model.predict_on_batch(x[start : start + PREDICT_BATCH])
        for start in range(0, len(x), PREDICT_BATCH)
    ]
    return np.concatenate([np.asarray(c, dtype=np.float64) for c in chunks])


def binary_log_loss(y_true: np.ndarray, probability: np.ndarray) -> float:
    """The lesson's binary cross-entropy on clipped probabilities."""
    clipped = np.clip(probability, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    return binary_cross_entropy(y_true, clipped)


def binary_scores(split: CreditSplit, p_train: np.ndarray, p_test: np.ndarray) -> dict[str, float]:
    """``train_loss``, ``test_loss``, ``train_auc``, ``test_auc`` of predicted probabilities."""
    return {
        "train_loss": binary_log_loss(split.y_train, p_train),
        "test_loss": binary_log_loss(split.y_test, p_test),
        "train_auc": float(roc_auc_score(split.y_train, p_train)),
        "test_auc": float(roc_auc_score(split.y_test, p_test)),
    }


def binary_measure(split: CreditSplit) -> Measure:
    """Per-epoch :func:`binary_scores` of a Keras model with one sigmoid output."""

    def measure(model: Any) -> dict[str, float]:
        return binary_scores(
            split, predict(model, split.x_train)[:, 0], predict(model, split.x_test)[:, 0]
        )

    return measure


def epoch_line(label: str, epoch: int, total: int, metrics: Mapping[str, float]) -> str:
    """One progress line: the child's label, the epoch and every metric to 4 decimals."""
    values = "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    return f"  {label:<22} epoch {epoch:>3}/{total}  {values}"


def progress_due(epoch: int, total: int) -> bool:
    """Whether epoch (1-based) gets a progress line: about PROGRESS_LINES per run, and the last."""
    return epoch == total or epoch % max(1, math.ceil(total / PROGRESS_LINES)) == 0


def fit_with_epoch_metrics(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    measure: Measure,
    label: str,
    say: Say,
    shuffle: bool = True,
) -> Curves:
    """``model.fit`` logging ``objective`` and ``measure(model)`` to the active run every epoch.

    Returns each metric's values by epoch.
    """
    callback: Any = import_keras().callbacks.Callback
    curves: Curves = {}

    class EpochMetrics(callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            metrics = {"objective": float((logs or {}).get("loss", math.nan)), **measure(model)}
            mlflow.log_metrics(metrics, step=epoch + 1)
            for name, value in metrics.items():
                curves.setdefault(name, []).append(value)
            if progress_due(epoch + 1, epochs):
                say(epoch_line(label, epoch + 1, epochs, metrics))

    model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        verbose=0,
        callbacks=[EpochMetrics()],
    )
    return curves
