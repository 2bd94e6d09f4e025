"""The comparison charts logged on parent runs."""

import numpy as np
from matplotlib.figure import Figure

from lesson.experiments.charts import (
    gap_chart,
    learning_curves_chart,
    metric_bars_chart,
    reliability_chart,
)


def test_charts_are_figures_with_one_panel_per_view():
    finals = [
        {"train_loss": 0.3, "test_loss": 0.5, "train_auc": 0.9, "test_auc": 0.8},
        {"train_loss": 0.4, "test_loss": 0.45, "train_auc": 0.85, "test_auc": 0.82},
    ]
    for final in finals:
        final["loss_gap"] = final["test_loss"] - final["train_loss"]
        final["auc_gap"] = final["train_auc"] - final["test_auc"]
    assert len(gap_chart("l2", [0.0, 1e-3], finals).axes) == 3
    curves = {
        name: {k: [0.5, 0.4] for k in ("train_loss", "test_loss", "train_auc", "test_auc")}
        for name in ("a", "b")
    }
    assert len(learning_curves_chart(curves, [("loss", "loss"), ("auc", "AUC")]).axes) == 2
    bars = metric_bars_chart({"a": {"x": 1.0}, "b": {"x": 2.0}}, [("x", "x")])
    assert isinstance(bars, Figure) and len(bars.axes) == 1
    y = np.array([0, 1] * 10)
    assert len(reliability_chart({"a": (y, np.linspace(0.1, 0.9, 20))}).axes) == 1
