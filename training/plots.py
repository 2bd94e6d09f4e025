"""PNG figures logged with each training run, drawn with matplotlib's non-interactive backend.

Each function draws one figure and writes it to ``path``; none of them shows anything on screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.ticker import FuncFormatter
from sklearn.metrics import precision_recall_curve, roc_curve

from training.evaluate import expected_calibration_error, reliability_bins

REPAID_COLOUR = "#1f77b4"
DEFAULT_COLOUR = "#e8710a"
# TensorFlow Playground's palette: blue for one class, orange for the other, white in between.
PLAYGROUND_COLOURS = LinearSegmentedColormap.from_list(
    "playground", ["#0877bd", "#e8eaeb", "#f59322"]
)
DPI = 110


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def _unit_square(axes: Any, xlabel: str, ylabel: str, title: str, legend: str) -> None:
    """Labels, [0, 1] limits (a little headroom for curves at 1), legend and grid of a rate plot."""
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc=legend)
    axes.grid(alpha=0.3)


def roc_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """ROC curves of one or more models on the same rows, AUC in the legend."""
    from sklearn.metrics import roc_auc_score

    figure, axes = plt.subplots(figsize=(5.5, 5))
    for name, (y, p) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        axes.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    _unit_square(
        axes,
        xlabel="false positive rate (repaid loans declined)",
        ylabel="true positive rate (defaults declined)",
        title="ROC curve, test split",
        legend="lower right",
    )
    return _save(figure, path)


def precision_recall_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Precision-recall curves; the dotted line is the default rate (a random ranking)."""
    from sklearn.metrics import average_precision_score

    figure, axes = plt.subplots(figsize=(5.5, 5))
    base_rate = None
    for name, (y, p) in curves.items():
        precision, recall, _ = precision_recall_curve(y, p)
        axes.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, p):.3f})")
        base_rate = float(np.mean(y))
    if base_rate is not None:
        axes.axhline(base_rate, color="grey", linestyle=":", label=f"default rate {base_rate:.3f}")
    _unit_square(
        axes,
        xlabel="recall (share of defaults caught)",
        ylabel="precision (share of declines that default)",
        title="Precision-recall curve, test split",
        legend="upper right",
    )
    return _save(figure, path)


def reliability_plot(
    y: np.ndarray,
    probabilities: dict[str, np.ndarray],
    path: Path,
    bins: int = 10,
) -> Path:
    """Observed default rate against mean predicted probability, per equal-frequency bin.

    Several score sets (before and after calibration) can be drawn on the same axes; a histogram of
    the first one's scores sits underneath.
    """
    figure, (axes, histogram) = plt.subplots(
        2, 1, figsize=(5.5, 6.2), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    upper = 0.0
    for name, p in probabilities.items():
        parts = reliability_bins(y, p, bins)
        mean_p, observed = parts.predicted, parts.observed
        # A 95 % interval of the observed rate shows how much of a gap chance alone explains.
        spread = 1.96 * np.sqrt(np.maximum(mean_p * (1 - mean_p), 1e-12) / parts.count)
        ece = expected_calibration_error(y, p, bins)
        axes.errorbar(
            mean_p, observed, yerr=spread, marker="o", capsize=3, label=f"{name} (ECE {ece:.3f})"
        )
        upper = max(upper, float(mean_p.max()), float(observed.max()))
    upper = min(1.0, upper * 1.1 + 0.02)
    axes.plot([0, upper], [0, upper], color="grey", linestyle=":", label="perfectly calibrated")
    axes.set(
        ylabel="observed default rate",
        title=f"Reliability, test split ({bins} equal-size bins)",
        xlim=(0, upper),
        ylim=(0, upper),
    )
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    first = next(iter(probabilities.values()))
    histogram.hist(first, bins=40, range=(0, upper), color="grey")
    histogram.set(xlabel="predicted probability of default", ylabel="applicants")
    return _save(figure, path)


def score_distribution_plot(
    y: np.ndarray, probability: np.ndarray, path: Path, threshold: float | None = None
) -> Path:
    """Histograms of the score for repaid and defaulted applicants, with the operating threshold."""
    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    edges = np.linspace(0.0, 1.0, 41).tolist()
    axes.hist(
        probability[y == 0],
        bins=edges,
        alpha=0.6,
        density=True,
        color=REPAID_COLOUR,
        label=f"repaid ({int(np.sum(y == 0))})",
    )
    axes.hist(
        probability[y == 1],
        bins=edges,
        alpha=0.6,
        density=True,
        color=DEFAULT_COLOUR,
        label=f"defaulted ({int(np.sum(y == 1))})",
    )
    if threshold is not None:
        axes.axvline(
            threshold, color="black", linestyle="--", label=f"operating threshold {threshold:.3f}"
        )
    axes.set(
        xlabel="predicted probability of default",
        ylabel="density",
        title="Score distribution by outcome, test split",
    )
    axes.legend()
    axes.grid(alpha=0.3)
    return _save(figure, path)


def learning_curves_plot(histories: Sequence[dict[str, list[float]]], path: Path) -> Path:
    """Training and validation cross-entropy (and AUC) per epoch, one pair of lines per seed.

    Validation loss rising while training loss keeps falling is over-fitting; the marker shows the
    epoch whose weights were kept. The loss drawn is the cross-entropy alone (``bce``), without the
    L2 penalty, so training and validation are on the same scale.
    """
    figure, (loss_axes, auc_axes) = plt.subplots(1, 2, figsize=(10, 4))
    label = "" if len(histories) == 1 else f" ({len(histories)} seeds)"
    for index, history in enumerate(histories):
        first = index == 0
        train_key = "bce" if "bce" in history else "loss"
        val_key = "val_bce" if "val_bce" in history else "val_loss"
        epochs = np.arange(1, len(history.get(train_key, [])) + 1)
        if train_key in history:
            loss_axes.plot(
                epochs,
                history[train_key],
                color=REPAID_COLOUR,
                alpha=0.8,
                label="training" + label if first else None,
            )
        if val_key in history:
            val = np.asarray(history[val_key])
            loss_axes.plot(
                epochs,
                val,
                color=DEFAULT_COLOUR,
                alpha=0.8,
                label="validation" + label if first else None,
            )
            best = int(np.argmin(val))
            loss_axes.scatter(
                [best + 1],
                [val[best]],
                color="black",
                zorder=3,
                label="kept weights" if first else None,
            )
        if "auc" in history:
            auc_axes.plot(
                epochs,
                history["auc"],
                color=REPAID_COLOUR,
                alpha=0.8,
                label="training" + label if first else None,
            )
        if "val_auc" in history:
            auc_axes.plot(
                epochs,
                history["val_auc"],
                color=DEFAULT_COLOUR,
                alpha=0.8,
                label="validation" + label if first else None,
            )
    loss_axes.set(
        xlabel="epoch",
        ylabel="binary cross-entropy",
        title="Loss per epoch (training rows with dropout on)",
    )
    auc_axes.set(xlabel="epoch", ylabel="ROC AUC", title="AUC per epoch")
    for axes in (loss_axes, auc_axes):
        axes.legend()
        axes.grid(alpha=0.3)
    return _save(figure, path)


def architecture_plot(
    layers: Sequence[tuple[str, int, str]],
    path: Path,
    title: str = "Network architecture",
    max_nodes: int = 10,
) -> Path:
    """The network as TensorFlow Playground draws it: columns of neurons joined by their weights.

    ``layers`` lists ``(name, units, note)`` from inputs to output. Wide layers show their first and
    last few neurons with an ellipsis between, and the true count underneath.
    """
    figure, axes = plt.subplots(figsize=(2.2 * len(layers) + 1.5, 5.2))
    positions: list[np.ndarray] = []
    for _, units, _ in layers:
        shown = min(units, max_nodes)
        ys = np.linspace(1, -1, shown) if shown > 1 else np.array([0.0])
        positions.append(ys)
        if units > max_nodes:
            # Leave a visible gap in the middle for the ellipsis.
            half = shown // 2
            ys[:half] += 0.08
            ys[half:] -= 0.08
    for column in range(len(layers) - 1):
        for y0 in positions[column]:
            for y1 in positions[column + 1]:
                axes.plot(
                    [column, column + 1],
                    [y0, y1],
                    color="#9aa0a6",
                    linewidth=0.35,
                    alpha=0.6,
                    zorder=1,
                )
    for column, ((name, units, note), ys) in enumerate(zip(layers, positions, strict=True)):
        colour = (
            "#f59322" if column == len(layers) - 1 else ("#0877bd" if column == 0 else "#5f6368")
        )
        axes.scatter(
            np.full(ys.shape, column), ys, s=140, color=colour, edgecolor="white", zorder=2
        )
        if units > max_nodes:
            axes.text(column, 0, "⋮", ha="center", va="center", fontsize=16, zorder=3)
        axes.text(column, 1.22, name, ha="center", va="bottom", fontsize=10, weight="bold")
        axes.text(
            column,
            -1.2,
            f"{units} unit{'s' if units != 1 else ''}",
            ha="center",
            va="top",
            fontsize=9,
        )
        if note:
            axes.text(
                column, -1.38, note, ha="center", va="top", fontsize=8, color="#3c4043", wrap=True
            )
    axes.set_xlim(-0.6, len(layers) - 0.4)
    axes.set_ylim(-1.75, 1.45)
    axes.set_title(title)
    axes.axis("off")
    return _save(figure, path)


def _round_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks between ``low`` and ``high``, for axes on a logarithmic scale."""
    ticks = []
    for exponent in range(-2, 12):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if low <= value <= high:
                ticks.append(value)
    return ticks or [low, high]


def decision_surface_plot(
    score: Callable[[pd.DataFrame], np.ndarray],
    typical: pd.Series,
    x_name: str,
    y_name: str,
    points: pd.DataFrame,
    outcomes: np.ndarray,
    path: Path,
    resolution: int = 80,
    log_axes: tuple[bool, bool] = (False, False),
) -> Path:
    """The predicted probability as a coloured surface over two numeric features.

    All other features are held at ``typical`` values (median or most frequent); the training
    points are drawn on top, blue for repaid and orange for defaulted, as in TensorFlow Playground.
    """

    def axis_values(name: str, log: bool) -> np.ndarray:
        values = pd.to_numeric(points[name], errors="coerce").dropna().to_numpy(dtype=np.float64)
        low, high = np.quantile(values, [0.01, 0.99]) if values.size else (0.0, 1.0)
        if high <= low:
            high = low + 1.0
        if log and low >= 0:
            return np.expm1(np.linspace(np.log1p(low), np.log1p(high), resolution))
        return np.linspace(low, high, resolution)

    xs = axis_values(x_name, log_axes[0])
    ys = axis_values(y_name, log_axes[1])
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid = pd.DataFrame([typical.to_dict()] * grid_x.size)
    grid[x_name] = grid_x.ravel()
    grid[y_name] = grid_y.ravel()
    surface = np.asarray(score(grid), dtype=np.float64).reshape(grid_x.shape)

    figure, axes = plt.subplots(figsize=(6.8, 5.4))
    upper = float(min(1.0, max(0.05, np.quantile(surface, 0.99) * 1.05)))
    mesh = axes.pcolormesh(
        grid_x, grid_y, surface, cmap=PLAYGROUND_COLOURS, vmin=0.0, vmax=upper, shading="auto"
    )
    figure.colorbar(mesh, ax=axes, label="predicted probability of default")
    contour = axes.contour(
        grid_x, grid_y, surface, levels=6, colors="black", linewidths=0.4, alpha=0.5
    )
    axes.clabel(contour, fmt="%.2f", fontsize=7)
    px = pd.to_numeric(points[x_name], errors="coerce").to_numpy(dtype=np.float64)
    py = pd.to_numeric(points[y_name], errors="coerce").to_numpy(dtype=np.float64)
    inside = (px >= xs[0]) & (px <= xs[-1]) & (py >= ys[0]) & (py <= ys[-1])
    for value, colour, label in ((0, REPAID_COLOUR, "repaid"), (1, DEFAULT_COLOUR, "defaulted")):
        chosen = inside & (outcomes == value)
        axes.scatter(
            px[chosen],
            py[chosen],
            s=9,
            color=colour,
            edgecolor="white",
            linewidth=0.3,
            label=f"training rows: {label}",
        )
    # Heavy-tailed amounts are drawn on a log-like scale, as the network sees them.
    if log_axes[0]:
        axes.set_xscale("symlog", linthresh=max(1.0, float(xs[1] - xs[0])))
        axes.set_xticks(_round_ticks(xs[0], xs[-1]))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if log_axes[1]:
        axes.set_yscale("symlog", linthresh=max(1.0, float(ys[1] - ys[0])))
        axes.set_yticks(_round_ticks(ys[0], ys[-1]))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes.set(
        xlabel=x_name,
        ylabel=y_name,
        title=f"Predicted default probability over {x_name} and {y_name}\n"
        "(other features at their median or most frequent value)",
    )
    axes.legend(loc="upper right", fontsize=8, framealpha=0.85)
    return _save(figure, path)
