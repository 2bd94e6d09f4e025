"""The regularisation sweeps (dropout, L2): one child run per value, the same data and seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np

from lesson.experiments.charts import gap_chart, learning_curves_chart
from lesson.experiments.data import CreditSplit, ExperimentOptions
from lesson.experiments.fitting import Curves, binary_measure, fit_with_epoch_metrics
from lesson.experiments.runs import ExperimentResult, Say, child_run, parent_run
from models.network import NetworkConfig, build_network


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
