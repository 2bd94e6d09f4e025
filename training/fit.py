"""Fitting the Keras DNN (one network or a seed ensemble), with per-epoch metrics to MLflow and
progress on the terminal."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric

from models.network import (
    NetworkConfig,
    ScoringNetwork,
    build_network,
    combine_networks,
    import_keras,
)

EARLY_STOPPING_MONITOR = "val_bce"
# Epoch curves reach MLflow this often, so a long run can be watched while it trains.
METRIC_FLUSH_EPOCHS = 10

# Training steps Keras runs per call into its compiled graph on large data: each call costs a
# Python round trip and a callback dispatch, which on a 2-core CPU weighed as much as the step of a
# small network (FACTS: 1M rows, batch 1024, one epoch 2.9 s alone and 1.5 s with 32 steps per
# call). The same batches in the same order; data with fewer than
# MANY_STEPS batches per epoch (the bundled files: about a dozen) keep one step per call.
STEPS_PER_EXECUTION = 32
MANY_STEPS = 256

EpochReporter = Callable[[int, int, dict[str, float]], None]
MemberReporter = Callable[[int, int], None]


@dataclass
class FitResult:
    """The trained network(s): Keras for the reference path, NumPy arrays for scoring."""

    model: Any
    members: list[Any] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    histories: list[dict[str, list[float]]] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0

    @property
    def network(self) -> ScoringNetwork:
        """The NumPy twin of the member (or the seed ensemble's members)."""
        return ScoringNetwork.from_keras(self.members)


def member_metric_prefix(member: int) -> str:
    """Member 1's curves keep the plain names (``train_loss``); others are ``member_2/...``."""
    return "" if member == 1 else f"member_{member}/"


def _epoch_logger(
    total_epochs: int, report: EpochReporter | None, member: int, log_to_mlflow: bool
) -> Any:
    callback: Any = import_keras().callbacks.Callback
    prefix = member_metric_prefix(member)

    class EpochLogger(callback):
        """Sends each epoch's loss and AUC, training and validation, to MLflow and the terminal.

        MLflow gets the curves in batches every ``METRIC_FLUSH_EPOCHS`` epochs and at the end of
        training: one write per epoch would cost more than the epoch itself on small data.
        """

        def __init__(self) -> None:
            super().__init__()
            self.pending: list[Metric] = []

        def flush(self) -> None:
            run = mlflow.active_run()
            if self.pending and run is not None:
                MlflowClient().log_batch(run.info.run_id, metrics=self.pending)
            self.pending = []

        def on_train_end(self, logs: dict[str, float] | None = None) -> None:
            self.flush()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            metrics = {
                "train_loss": float(logs.get("loss", np.nan)),
                "train_auc": float(logs.get("auc", np.nan)),
                "train_bce": float(logs.get("bce", np.nan)),
                "val_loss": float(logs.get("val_loss", np.nan)),
                "val_auc": float(logs.get("val_auc", np.nan)),
                "val_bce": float(logs.get("val_bce", np.nan)),
            }
            if log_to_mlflow:
                now = int(time.time() * 1000)
                self.pending.extend(
                    Metric(prefix + k, v, now, epoch + 1) for k, v in metrics.items()
                )
                if (epoch + 1) % METRIC_FLUSH_EPOCHS == 0:
                    self.flush()
            if report is not None:
                report(epoch + 1, total_epochs, metrics)

    return EpochLogger()


def release_memory() -> None:
    """Collect garbage and hand the C heap's free pages back to the system (glibc only; a no-op
    elsewhere).

    Measured fitting three 256-128-64 members on 600,000 rows: resident memory grew by about
    75 MB per member that was free but kept by glibc's allocator; ``malloc_trim`` gave 94 MB of
    it back, and about 50 MB after reading and checking a 1M-row file. Called between stages and
    members, where a large run's peak would otherwise stack on that slack.
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is not None:
        trim(0)


def steps_per_execution(rows: int, batch_size: int) -> int:
    """Steps per Keras graph call for ``rows`` training rows in batches of ``batch_size``:
    :data:`STEPS_PER_EXECUTION` from :data:`MANY_STEPS` batches an epoch, else 1."""
    return STEPS_PER_EXECUTION if -(-rows // batch_size) >= MANY_STEPS else 1


def fit_member(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: NetworkConfig,
    seed: int,
    report: EpochReporter | None = None,
    member: int = 1,
    log_to_mlflow: bool = True,
) -> tuple[Any, dict[str, list[float]]]:
    """Train one network with Adam and binary cross-entropy; stop early on the validation
    cross-entropy (without the L2 penalty, which would otherwise reward shrinking weights) and keep
    the best epoch's weights."""
    keras = import_keras()
    model = build_network(x_train.shape[1], config, seed, prior=float(np.mean(y_train)))
    # Keras's "loss" includes the L2 penalty; "bce", the cross-entropy alone, is what early
    # stopping watches on the validation rows.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryCrossentropy(name="bce")],
        steps_per_execution=steps_per_execution(len(x_train), config.batch_size),
    )
    callbacks = [_epoch_logger(config.epochs, report, member, log_to_mlflow)]
    if config.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=EARLY_STOPPING_MONITOR,
                patience=config.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    if config.lr_reduce_patience > 0:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=EARLY_STOPPING_MONITOR,
                factor=1.0 / config.lr_reduce_factor,
                patience=config.lr_reduce_patience,
                verbose=0,
            )
        )
    weights = None
    if config.positive_weight != 1.0:
        weights = np.where(y_train == 1, config.positive_weight, 1.0).astype(np.float32)
    history = model.fit(
        x_train,
        y_train.astype(np.float32)[:, None],
        sample_weight=weights,
        validation_data=(x_val, y_val.astype(np.float32)[:, None]),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    curves = {
        k: [float(v) for v in vs] for k, vs in history.history.items() if k != "learning_rate"
    }
    return model, curves


def fit_network(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: NetworkConfig,
    seed: int,
    report: EpochReporter | None = None,
    on_member: MemberReporter | None = None,
    log_to_mlflow: bool | None = None,
) -> FitResult:
    """Train ``config.ensemble_size`` networks from seeds ``seed, seed + 1000, ...``.

    Per-epoch curves go to the active MLflow run (when there is one and ``log_to_mlflow`` is not
    False) and to ``report``; ``on_member(k, n)`` is called before member ``k`` of ``n`` starts.
    """
    if log_to_mlflow is None:
        log_to_mlflow = mlflow.active_run() is not None
    members, histories = [], []
    for index in range(config.ensemble_size):
        if on_member is not None:
            on_member(index + 1, config.ensemble_size)
        model, curves = fit_member(
            x_train,
            y_train,
            x_val,
            y_val,
            config,
            # Seeds far apart, so that member k of seed s never equals member 1 of seed s + k.
            seed + 1000 * index,
            report,
            member=index + 1,
            log_to_mlflow=log_to_mlflow,
        )
        members.append(model)
        histories.append(curves)
        release_memory()
    first = histories[0].get(EARLY_STOPPING_MONITOR, [])
    return FitResult(
        model=combine_networks(members),
        members=members,
        history=histories[0],
        histories=histories,
        best_epoch=int(np.argmin(first)) + 1 if first else 0,
        epochs_run=len(first),
    )
