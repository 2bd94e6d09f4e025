"""Plumbing shared by the lesson experiments.

Data preparation, parent and child MLflow runs, per-epoch training and test metrics, calibration
measures, the dropout / L2 sweep, and the comparison charts logged on parent runs.

Per-epoch metrics are measured on the training and the test rows alike, with the network in
inference mode (dropout off) and without the L2 penalty, so that the train-test gap compares like
with like. The loss Keras minimised, penalty and dropout noise included, is logged as
``objective``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from models.mlflow_flavor import use_tracking
from models.network import NetworkConfig, build_network, import_keras
from models.preprocessing import Preprocessor
from training.data import BUNDLED_DATA, load_dataset, stratified_split
from training.evaluate import classification_metrics
from training.losses import binary_cross_entropy
from training.train import ensure_experiment

Say = Callable[[str], None]
Measure = Callable[[Any], dict[str, float]]

# Keras clips probabilities to [1e-7, 1 - 1e-7] in its cross-entropy, and so does
# training.evaluate; the per-epoch losses use the same clip so they agree with both.
PROBABILITY_CLIP = 1e-7
PREDICT_BATCH = 8192
CALIBRATION_BINS = 10
# "Confidently wrong": a predicted default probability below this for a loan that defaulted, or
# above 1 minus it for one that was repaid.
CONFIDENT = 0.1
# About this many progress lines per child run, whatever the number of epochs.
PROGRESS_LINES = 20


class ExperimentError(ValueError):
    """An experiment cannot run on the given input; the message says why in one line."""


# --- Calibration measures --------------------------------------------------------------------


def _binary_pair(y_true: Any, probability: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(probability, dtype=np.float64).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need equally long, non-empty arrays, got {y.shape} and {p.shape}")
    return y, p


def expected_calibration_error(
    y_true: Any, probability: Any, bins: int = CALIBRATION_BINS
) -> float:
    """Weighted mean |observed rate - mean predicted probability| over equal-frequency bins.

    Rows are sorted by predicted probability and cut into ``bins`` groups of (nearly) equal size,
    so every bin holds enough loans to estimate a default rate, even where the model's
    probabilities crowd together.
    """
    y, p = _binary_pair(y_true, probability)
    order = np.argsort(p, kind="stable")
    total = 0.0
    for group in np.array_split(order, min(bins, p.size)):
        total += group.size * abs(float(y[group].mean()) - float(p[group].mean()))
    return total / p.size


def confidently_wrong_share(y_true: Any, probability: Any, threshold: float = CONFIDENT) -> float:
    """Share of rows predicted with probability < threshold for a default, > 1 - threshold for a
    repaid loan."""
    y, p = _binary_pair(y_true, probability)
    wrong = ((y == 1) & (p < threshold)) | ((y == 0) & (p > 1.0 - threshold))
    return float(wrong.mean())


def probability_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """ROC AUC, log loss and Brier score (training.evaluate), plus ECE and confidently wrong."""
    return {
        **classification_metrics(y_true, probability),
        "ece": expected_calibration_error(y_true, probability),
        "confidently_wrong": confidently_wrong_share(y_true, probability),
    }


def reliability_points(
    y_true: np.ndarray, probability: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted probability and observed rate of each equal-frequency bin."""
    y, p = _binary_pair(y_true, probability)
    groups = np.array_split(np.argsort(p, kind="stable"), min(bins, p.size))
    return (
        np.array([p[g].mean() for g in groups]),
        np.array([y[g].mean() for g in groups]),
    )


# --- Data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentOptions:
    """What every credit-data experiment is given; each experiment adds its own settings."""

    data: Path = BUNDLED_DATA
    target: str | None = None
    positive_label: str | None = None
    experiment: str = ""  # each experiment names its own default
    seed: int = 0
    quick: bool = False


def sweep_network() -> NetworkConfig:
    """The network the regularisation sweeps start from: wide enough to overfit, no dropout, no
    L2, a fixed number of epochs (early stopping would hide the overfitting being measured)."""
    return NetworkConfig(
        hidden_units=(256, 256),
        keep_probability=1.0,
        l2=0.0,
        batch_size=64,
        epochs=100,
        early_stopping_patience=0,
    )


@dataclass(frozen=True)
class CreditSplit:
    """Encoded training and test rows of a loan file, split as ``loanrisk train`` splits it.

    The validation rows of that split are left out: no experiment stops early, and the test rows
    are then the very rows on which ``loanrisk train`` reports its test metrics.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    data_file: str
    data_sha256: str

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def params(self) -> dict[str, Any]:
        return {
            "data_file": self.data_file,
            "data_sha256": self.data_sha256,
            "rows_train": len(self.y_train),
            "rows_test": len(self.y_test),
            "n_features_encoded": self.n_features,
        }


def load_credit_split(
    path: Path, seed: int, target: str | None = None, positive_label: str | None = None
) -> CreditSplit:
    """Load and validate a loan file (raises ``DataError``), split it, fit the preprocessing on
    the training rows and encode both parts."""
    dataset = load_dataset(path, target, positive_label)
    split = stratified_split(dataset.y, seed)
    features = dataset.features
    preprocessor = Preprocessor.fit(features.iloc[split.train], dataset.contract)
    return CreditSplit(
        x_train=preprocessor.transform(features.iloc[split.train]),
        y_train=dataset.y[split.train],
        x_test=preprocessor.transform(features.iloc[split.test]),
        y_test=dataset.y[split.test],
        data_file=dataset.path.name,
        data_sha256=dataset.sha256,
    )


# --- Keras training with per-epoch metrics ------------------------------------------------


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


Curves = dict[str, list[float]]


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
    keras = import_keras()
    curves: Curves = {}

    class EpochMetrics(keras.callbacks.Callback):
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


# --- Parent and child runs --------------------------------------------------------------------


@dataclass
class ExperimentResult:
    """What an experiment logged: where, and each child's summary (the same keys for all)."""

    kind: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    children: dict[str, dict[str, float]] = field(default_factory=dict)
    charts: list[str] = field(default_factory=list)

    def add_chart(self, figure: Figure, name: str) -> None:
        """Log a figure as an artifact of the parent run (which must be the active run)."""
        mlflow.log_figure(figure, name)
        self.charts.append(name)


def _tags(kind: str, **extra: str) -> dict[str, str]:
    return {"loanrisk.stage": "experiment", "loanrisk.experiment": kind, **extra}


@contextmanager
def parent_run(
    kind: str, experiment: str, params: Mapping[str, Any], description: str
) -> Iterator[ExperimentResult]:
    """Open the experiment's parent run; child runs opened inside it nest under it."""
    uri = use_tracking()
    experiment_id = ensure_experiment(experiment)
    with mlflow.start_run(run_name=kind) as run:
        # The note is what the MLflow UI shows as the run's description.
        mlflow.set_tags(_tags(kind, **{"mlflow.note.content": description}))
        mlflow.log_params(dict(params))
        yield ExperimentResult(kind, uri, experiment_id, run.info.run_id)


@contextmanager
def child_run(kind: str, variant: str, params: Mapping[str, Any]) -> Iterator[str]:
    """Open one variant's child run under the active parent run; yields its run id."""
    with mlflow.start_run(run_name=variant, nested=True) as run:
        mlflow.set_tags(_tags(kind, **{"loanrisk.variant": variant}))
        mlflow.log_params(dict(params))
        yield run.info.run_id


# --- Regularisation sweeps (dropout, L2) -------------------------------------------------------


@dataclass(frozen=True)
class SweepVariant:
    """One child of a sweep: its run name, the swept value and the network it trains."""

    name: str
    value: float
    config: NetworkConfig
    params: Mapping[str, Any] = field(default_factory=dict)


def gap_summary(curves: Curves) -> dict[str, float]:
    """Final-epoch training and test figures, their gaps, and the best test loss."""
    best = int(np.argmin(curves["test_loss"]))
    summary = {
        name: curves[name][-1] for name in ("train_loss", "test_loss", "train_auc", "test_auc")
    }
    return {
        **summary,
        "loss_gap": summary["test_loss"] - summary["train_loss"],
        "auc_gap": summary["train_auc"] - summary["test_auc"],
        "min_test_loss": curves["test_loss"][best],
        "min_test_loss_epoch": float(best + 1),
    }


def run_sweep(
    *,
    kind: str,
    variable: str,
    variants: Sequence[SweepVariant],
    split: CreditSplit,
    options: ExperimentOptions,
    description: str,
    say: Say,
) -> ExperimentResult:
    """Train one child run per variant, same data, split and seed; chart the train-test gaps."""
    base = variants[0].config
    params = {
        **split.params(),
        "seed": options.seed,
        "quick": options.quick,
        "swept": variable,
        "values": ",".join(f"{v.value:g}" for v in variants),
        "hidden_units": "-".join(str(u) for u in base.hidden_units),
        "epochs": base.epochs,
        "batch_size": base.batch_size,
        "learning_rate": base.learning_rate,
    }
    curves: dict[str, Curves] = {}
    with parent_run(kind, options.experiment, params, description) as result:
        for index, variant in enumerate(variants, start=1):
            say(f"[{index}/{len(variants)}] {variant.name}")
            child_params = {**variant.config.to_params(), **variant.params, "seed": options.seed}
            with child_run(kind, variant.name, child_params):
                model = build_network(split.n_features, variant.config, options.seed)
                curves[variant.name] = fit_with_epoch_metrics(
                    model,
                    split.x_train,
                    split.y_train.astype(np.float32).reshape(-1, 1),
                    epochs=variant.config.epochs,
                    batch_size=variant.config.batch_size,
                    measure=binary_measure(split),
                    label=variant.name,
                    say=say,
                )
                summary = gap_summary(curves[variant.name])
                mlflow.log_metrics(
                    {
                        name: summary[name]
                        for name in ("loss_gap", "auc_gap", "min_test_loss", "min_test_loss_epoch")
                    }
                )
                result.children[variant.name] = summary
        result.add_chart(
            gap_chart(variable, [v.value for v in variants], list(result.children.values())),
            f"train_test_gap_vs_{variable}.png",
        )
        result.add_chart(
            learning_curves_chart(curves, [("loss", "log loss"), ("auc", "AUC")]),
            "learning_curves.png",
        )
    return result


# --- Charts ------------------------------------------------------------------------------------


def _panels(count: int, width: float = 4.8, height: float = 3.8) -> tuple[Figure, list[Any]]:
    # A bare Figure needs no pyplot and no GUI backend, so charts are drawn headless and never
    # accumulate in pyplot's global state.
    figure = Figure(figsize=(width * count, height), layout="constrained")
    return figure, list(figure.subplots(1, count, squeeze=False)[0])


def _value_label(value: float) -> str:
    return f"{value:g}"


def gap_chart(
    variable: str, values: Sequence[float], finals: Sequence[Mapping[str, float]]
) -> Figure:
    """Final training and test loss and AUC against the swept value, and the gaps between them.

    Values sit at evenly spaced positions, so a sweep over orders of magnitude that includes 0
    reads as easily as a linear one.
    """
    figure, (loss_ax, auc_ax, gap_ax) = _panels(3)
    positions = np.arange(len(values))
    labels = [_value_label(v) for v in values]
    for ax, metric, title in ((loss_ax, "loss", "log loss"), (auc_ax, "auc", "ROC AUC")):
        ax.plot(positions, [f[f"train_{metric}"] for f in finals], "o--", label="training")
        ax.plot(positions, [f[f"test_{metric}"] for f in finals], "o-", label="test")
        ax.set_title(f"final {title}")
    gap_ax.plot(positions, [f["loss_gap"] for f in finals], "o-", label="test - train log loss")
    gap_ax.plot(positions, [f["auc_gap"] for f in finals], "s-", label="train - test AUC")
    gap_ax.axhline(0.0, color="grey", linewidth=0.8)
    gap_ax.set_title("train-test gap (over-fitting)")
    for ax in (loss_ax, auc_ax, gap_ax):
        ax.set_xticks(positions, labels)
        ax.set_xlabel(variable)
        ax.grid(alpha=0.3)
        ax.legend()
    return figure


def learning_curves_chart(
    curves: Mapping[str, Mapping[str, Sequence[float]]], panels: Sequence[tuple[str, str]]
) -> Figure:
    """Per-epoch training (dashed) and test (solid) curves, one colour per child run.

    ``panels`` pairs a metric stem (``train_<stem>`` / ``test_<stem>``) with its axis title.
    """
    figure, axes = _panels(len(panels))
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for ax, (stem, title) in zip(axes, panels, strict=True):
        for colour, (name, child) in zip(colours, curves.items(), strict=True):
            epochs = np.arange(1, len(child[f"test_{stem}"]) + 1)
            ax.plot(epochs, child[f"train_{stem}"], "--", color=colour, linewidth=1)
            ax.plot(epochs, child[f"test_{stem}"], "-", color=colour, label=name)
        ax.set_title(f"{title}: training dashed, test solid")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return figure


def metric_bars_chart(
    children: Mapping[str, Mapping[str, float]], metrics: Sequence[tuple[str, str]]
) -> Figure:
    """One bar panel per metric, one bar per child run."""
    figure, axes = _panels(len(metrics), width=3.4)
    names = list(children)
    colours = [f"C{i % 10}" for i in range(len(names))]
    for ax, (key, title) in zip(axes, metrics, strict=True):
        heights = [children[name][key] for name in names]
        bars = ax.bar(range(len(names)), heights, color=colours)
        ax.bar_label(bars, fmt="%.3f", fontsize="small")
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize="small")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    return figure


def reliability_chart(predictions: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Observed default rate against mean predicted probability in equal-frequency bins."""
    figure, (ax,) = _panels(1, width=5.2, height=5.0)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, label="perfectly calibrated")
    for name, (y_true, probability) in predictions.items():
        predicted, observed = reliability_points(y_true, probability)
        ax.plot(predicted, observed, "o-", label=name)
    ax.set_xlabel("mean predicted probability of default")
    ax.set_ylabel("observed default rate")
    ax.set_title(f"reliability, {CALIBRATION_BINS} equal-frequency bins (test rows)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure
