"""Fitting the Keras DNN, with per-epoch metrics to MLflow and progress on the terminal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np

from models.network import NetworkConfig, build_network, import_keras

EpochReporter = Callable[[int, int, dict[str, float]], None]


@dataclass
class FitResult:
    model: Any
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    epochs_run: int = 0


def _epoch_logger(total_epochs: int, report: EpochReporter | None) -> Any:
    keras = import_keras()

    class EpochLogger(keras.callbacks.Callback):
        """Sends each epoch's loss and AUC, training and validation, to MLflow and the terminal."""

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            metrics = {
                "train_loss": float(logs.get("loss", np.nan)),
                "train_auc": float(logs.get("auc", np.nan)),
                "val_loss": float(logs.get("val_loss", np.nan)),
                "val_auc": float(logs.get("val_auc", np.nan)),
            }
            mlflow.log_metrics(metrics, step=epoch + 1)
            if report is not None:
                report(epoch + 1, total_epochs, metrics)

    return EpochLogger()


def fit_network(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: NetworkConfig,
    seed: int,
    report: EpochReporter | None = None,
) -> FitResult:
    """Train with Adam and binary cross-entropy; stop early on validation loss, keep the best."""
    keras = import_keras()
    model = build_network(x_train.shape[1], config, seed)
    callbacks = [_epoch_logger(config.epochs, report)]
    if config.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=config.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    history = model.fit(
        x_train,
        y_train.astype(np.float32),
        validation_data=(x_val, y_val.astype(np.float32)),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    losses = history.history.get("val_loss", [])
    best = int(np.argmin(losses)) + 1 if losses else 0
    return FitResult(
        model=model,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        best_epoch=best,
        epochs_run=len(losses),
    )
