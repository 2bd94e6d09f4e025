"""The lesson's forward and backward propagation, run for real beside Keras.

``lesson.backprop`` trains a small dense network on loan data by full-batch gradient descent,
written out in NumPy. Keras then trains the same architecture from the same initial weights with
the same algorithm (SGD, one batch of all training rows per epoch, no shuffling). The two child
runs log identical metrics per epoch; the parent charts both loss curves and their difference,
and logs the largest difference in loss and in final weights. Agreement to float32 precision
shows that the hand-written backward pass is what Keras's automatic differentiation computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mlflow
import numpy as np
from matplotlib.figure import Figure

from lesson.backprop import DenseNetwork, forward, train_gradient_descent
from lesson.experiments.data import (
    CreditSplit,
    ExperimentError,
    ExperimentOptions,
    load_credit_split,
)
from lesson.experiments.fitting import (
    Curves,
    binary_measure,
    binary_scores,
    epoch_line,
    fit_with_epoch_metrics,
    progress_due,
)
from lesson.experiments.runs import ExperimentResult, Say, child_run, parent_run
from models.network import NetworkConfig, build_network, import_keras

KIND = "backprop"
DEFAULT_EXPERIMENT = "lesson-backprop"
QUICK_EPOCHS = 3
NUMPY_CHILD = "numpy_backprop"
KERAS_CHILD = "keras_sgd"
DESCRIPTION = (
    "lesson/backprop.py (NumPy forward and backward pass) and Keras train the same network "
    "from the same initial weights by full-batch gradient descent. Their per-epoch losses "
    "should coincide to float32 precision."
)


@dataclass(frozen=True)
class BackpropOptions(ExperimentOptions):
    experiment: str = DEFAULT_EXPERIMENT
    hidden_units: tuple[int, ...] = (64, 32)
    # Full-batch steps on standardised inputs tolerate a far larger rate than Adam's 1e-3.
    learning_rate: float = 0.3
    epochs: int = 100


def _final(curves: Curves) -> dict[str, float]:
    return {name: values[-1] for name, values in curves.items()}


def _train_numpy(
    network: DenseNetwork, split: CreditSplit, options: BackpropOptions, epochs: int, say: Say
) -> Curves:
    curves: Curves = {}

    def on_epoch(epoch: int, objective: float) -> None:
        # Measured after the epoch's update, as Keras measures at the end of an epoch, while
        # the objective is the loss of the forward pass before it, as Keras reports ``loss``.
        metrics = {
            "objective": objective,
            **binary_scores(
                split, forward(network, split.x_train)[0], forward(network, split.x_test)[0]
            ),
        }
        mlflow.log_metrics(metrics, step=epoch + 1)
        for name, value in metrics.items():
            curves.setdefault(name, []).append(value)
        if progress_due(epoch + 1, epochs):
            say(epoch_line(NUMPY_CHILD, epoch + 1, epochs, metrics))

    train_gradient_descent(
        network,
        split.x_train.astype(np.float64),
        split.y_train,
        learning_rate=options.learning_rate,
        epochs=epochs,
        on_epoch=on_epoch,
    )
    return curves


def _train_keras(
    initial: DenseNetwork, split: CreditSplit, options: BackpropOptions, epochs: int, say: Say
) -> tuple[Curves, list[np.ndarray]]:
    keras = import_keras()
    n_train = len(split.y_train)
    config = NetworkConfig(
        hidden_units=options.hidden_units,
        keep_probability=1.0,
        l2=0.0,
        learning_rate=options.learning_rate,
        batch_size=n_train,
        epochs=epochs,
        early_stopping_patience=0,
    )
    model = build_network(split.n_features, config, options.seed)
    model.set_weights(
        [
            array.astype(np.float32)
            for w, b in zip(initial.weights, initial.biases, strict=True)
            for array in (w, b)
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=options.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
    )
    curves = fit_with_epoch_metrics(
        model,
        split.x_train,
        split.y_train.astype(np.float32).reshape(-1, 1),
        epochs=epochs,
        batch_size=n_train,
        measure=binary_measure(split),
        label=KERAS_CHILD,
        say=say,
        shuffle=False,
    )
    return curves, model.get_weights()


def run_backprop(options: BackpropOptions, say: Say) -> ExperimentResult:
    """Train by hand and by Keras from the same start; log both curves and their difference."""
    if not (math.isfinite(options.learning_rate) and options.learning_rate > 0):
        raise ExperimentError(f"learning rate must be > 0, got {options.learning_rate}")
    if options.epochs < 1:
        raise ExperimentError(f"epochs must be >= 1, got {options.epochs}")
    if not options.hidden_units or min(options.hidden_units) < 1:
        raise ExperimentError("hidden units must be one or more positive layer sizes")
    epochs = QUICK_EPOCHS if options.quick else options.epochs
    split = load_credit_split(options.data, options.seed, options.target, options.positive_label)
    network = DenseNetwork.initialise(split.n_features, options.hidden_units, seed=options.seed)
    initial = network.copy()
    say(
        f"{KIND}: {split.data_file}, {len(split.y_train)} training rows in one batch, "
        f"{epochs} gradient-descent steps at learning rate {options.learning_rate:g}, "
        f"layers {'-'.join(str(s) for s in network.layer_sizes)}"
    )
    child_params = {
        "hidden_units": "-".join(str(u) for u in options.hidden_units),
        "learning_rate": options.learning_rate,
        "epochs": epochs,
        "batch_size": len(split.y_train),
        "seed": options.seed,
        "initialisation": "He normal (lesson.backprop), shared",
    }
    params = {**split.params(), **child_params, "quick": options.quick}
    with parent_run(KIND, options.experiment, params, DESCRIPTION) as result:
        say(f"[1/2] {NUMPY_CHILD}")
        with child_run(KIND, NUMPY_CHILD, {**child_params, "implementation": "numpy"}):
            try:
                numpy_curves = _train_numpy(network, split, options, epochs, say)
            except FloatingPointError as exc:
                # A learning rate so large that the loss overflows: the runs end as failed.
                raise ExperimentError(str(exc)) from None
            result.children[NUMPY_CHILD] = _final(numpy_curves)
        say(f"[2/2] {KERAS_CHILD}")
        with child_run(KIND, KERAS_CHILD, {**child_params, "implementation": "keras"}):
            keras_curves, keras_weights = _train_keras(initial, split, options, epochs, say)
            result.children[KERAS_CHILD] = _final(keras_curves)
        numpy_weights = [
            a for w, b in zip(network.weights, network.biases, strict=True) for a in (w, b)
        ]
        differences = {
            "max_abs_objective_difference": float(
                np.max(np.abs(np.subtract(numpy_curves["objective"], keras_curves["objective"])))
            ),
            "max_abs_weight_difference": float(
                max(
                    np.max(np.abs(a - b)) for a, b in zip(numpy_weights, keras_weights, strict=True)
                )
            ),
        }
        mlflow.log_metrics(differences)
        result.children[NUMPY_CHILD].update(differences)
        result.children[KERAS_CHILD].update(differences)
        result.add_chart(loss_curves_chart(numpy_curves, keras_curves), "loss_curves.png")
    return result


def loss_curves_chart(numpy_curves: Curves, keras_curves: Curves) -> Figure:
    """Both objective curves on one axis, and their absolute difference on a log scale."""
    figure = Figure(figsize=(10.0, 3.8), layout="constrained")
    curve_ax, diff_ax = figure.subplots(1, 2)
    epochs = np.arange(1, len(numpy_curves["objective"]) + 1)
    curve_ax.plot(epochs, numpy_curves["objective"], "-", linewidth=3, alpha=0.5, label=NUMPY_CHILD)
    curve_ax.plot(epochs, keras_curves["objective"], "--", color="black", label=KERAS_CHILD)
    curve_ax.plot(epochs, numpy_curves["test_loss"], "-", alpha=0.6, label=f"{NUMPY_CHILD} test")
    curve_ax.plot(
        epochs, keras_curves["test_loss"], ":", color="black", label=f"{KERAS_CHILD} test"
    )
    curve_ax.set_title("training loss (objective) and test loss per epoch")
    curve_ax.set_xlabel("epoch")
    curve_ax.legend(fontsize="small")
    curve_ax.grid(alpha=0.3)
    difference = np.abs(np.subtract(numpy_curves["objective"], keras_curves["objective"]))
    # A zero difference cannot sit on a log axis; float32 spacing near 1 is about 1e-7.
    diff_ax.semilogy(epochs, np.maximum(difference, 1e-12), "o-", markersize=3)
    diff_ax.set_title("|NumPy - Keras| training loss")
    diff_ax.set_xlabel("epoch")
    diff_ax.grid(alpha=0.3)
    return figure
