"""The comparison charts logged on an experiment's parent run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from training.evaluate import ECE_BINS, reliability_bins


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
        parts = reliability_bins(y_true, probability)
        ax.plot(parts.predicted, parts.observed, "o-", label=name)
    ax.set_xlabel("mean predicted probability of default")
    ax.set_ylabel("observed default rate")
    ax.set_title(f"reliability, {ECE_BINS} equal-frequency bins (test rows)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure
