"""Cross-entropy against MSE and MAE for classification, on loan data.

The project's DNN is trained three times with the same data, split, seed and initial weights,
minimising binary cross-entropy, mean squared error or mean absolute error of the predicted
probability. The children log ranking quality (AUC), probability quality (log loss, Brier score,
expected calibration error) and the share of confidently wrong predictions: the lesson's point that
MSE and MAE lead to over-confident wrong answers, in numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import mlflow
import numpy as np

from lesson.experiments.charts import learning_curves_chart, metric_bars_chart, reliability_chart
from lesson.experiments.data import ExperimentOptions, load_credit_split
from lesson.experiments.fitting import binary_measure, fit_with_epoch_metrics, predict
from lesson.experiments.measures import probability_metrics
from lesson.experiments.runs import ExperimentResult, Say, child_run, parent_run
from models.network import NetworkConfig, build_network, import_keras

KIND = "losses"
DEFAULT_EXPERIMENT = "lesson-losses"
QUICK_EPOCHS = 2
LOSSES = ("binary_cross_entropy", "mean_squared_error", "mean_absolute_error")
SUMMARY_METRICS = (
    ("roc_auc", "ROC AUC (higher is better)"),
    ("log_loss", "log loss (lower is better)"),
    ("brier", "Brier score (lower is better)"),
    ("ece", "calibration error, ECE (lower)"),
    ("confidently_wrong", "confidently wrong (lower)"),
)
DESCRIPTION = (
    "The same DNN, data, split, seed and initial weights trained with binary cross-entropy, "
    "mean squared error and mean absolute error on the predicted probability. Compare test "
    "AUC, log loss, Brier score, expected calibration error (10 equal-frequency bins) and the "
    "share of confidently wrong predictions (p < 0.1 for a default, p > 0.9 for a repaid loan)."
)


@dataclass(frozen=True)
class LossesOptions(ExperimentOptions):
    experiment: str = DEFAULT_EXPERIMENT
    # The project's default network, trained for a fixed number of epochs (no early stopping,
    # which would judge every child by cross-entropy on validation data).
    network: NetworkConfig = field(
        default_factory=lambda: NetworkConfig(epochs=100, early_stopping_patience=0)
    )


def keras_loss(name: str) -> object:
    keras = import_keras()
    return {
        "binary_cross_entropy": keras.losses.BinaryCrossentropy,
        "mean_squared_error": keras.losses.MeanSquaredError,
        "mean_absolute_error": keras.losses.MeanAbsoluteError,
    }[name]()


def run_losses(options: LossesOptions, say: Say) -> ExperimentResult:
    """Train one child per loss function and chart their test metrics on the parent."""
    config = replace(options.network, epochs=QUICK_EPOCHS) if options.quick else options.network
    split = load_credit_split(options.data, options.seed, options.target, options.positive_label)
    keras = import_keras()
    say(
        f"{KIND}: {split.data_file}, {len(split.y_train)} training and {len(split.y_test)} test "
        f"rows, {config.epochs} epochs per loss"
    )
    params = {**split.params(), **config.to_params(), "seed": options.seed, "quick": options.quick}
    curves = {}
    predictions = {}
    with parent_run(KIND, options.experiment, params, DESCRIPTION) as result:
        for index, loss_name in enumerate(LOSSES, start=1):
            say(f"[{index}/{len(LOSSES)}] {loss_name}")
            child_params = {**config.to_params(), "seed": options.seed, "loss": loss_name}
            with child_run(KIND, loss_name, child_params):
                model = build_network(split.n_features, config, options.seed)
                # Recompiling swaps only the loss: same architecture and seeded initial weights.
                model.compile(
                    optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                    loss=keras_loss(loss_name),
                )
                curves[loss_name] = fit_with_epoch_metrics(
                    model,
                    split.x_train,
                    split.y_train.astype(np.float32).reshape(-1, 1),
                    epochs=config.epochs,
                    batch_size=config.batch_size,
                    measure=binary_measure(split),
                    label=loss_name,
                    say=say,
                )
                probability = predict(model, split.x_test)[:, 0]
                metrics = probability_metrics(split.y_test, probability)
                mlflow.log_metrics({f"test_{name}": value for name, value in metrics.items()})
                result.children[loss_name] = metrics
                predictions[loss_name] = (split.y_test, probability)
        result.add_chart(metric_bars_chart(result.children, SUMMARY_METRICS), "loss_comparison.png")
        result.add_chart(reliability_chart(predictions), "reliability.png")
        result.add_chart(
            learning_curves_chart(curves, [("loss", "log loss"), ("auc", "AUC")]),
            "learning_curves.png",
        )
    return result
