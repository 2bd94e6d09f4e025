"""The lesson-end project: a dense digit classifier with and without dropout.

Reads MNIST-format CSV files (a ``label`` column, then one column per pixel; a file without a
header row is read the same way, label first), scales pixels to [0, 1] by the training file's
largest pixel value (255 for MNIST), one-hot encodes the labels and trains the same network twice
with categorical cross-entropy: once with dropout keeping each input and hidden unit with
probability p (the lesson's 0.70), once without dropout. The two child runs log training and
test accuracy per epoch; the parent charts the over-fitting gap between them.

Any pixel count works, so the tests run it on scikit-learn's 8x8 digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lesson.experiments.charts import learning_curves_chart
from lesson.experiments.data import ExperimentError
from lesson.experiments.fitting import PROBABILITY_CLIP, Curves, fit_with_epoch_metrics, predict
from lesson.experiments.runs import ExperimentResult, Say, child_run, parent_run
from lesson.losses import categorical_cross_entropy
from models.network import import_keras
from training.data import read_table

KIND = "mnist"
DEFAULT_EXPERIMENT = "lesson-mnist"
LABEL = "label"
NO_DROPOUT = "no_dropout"
QUICK_EPOCHS = 2
# --quick trains on a seeded sample: enough rows for every digit, few enough for a test.
QUICK_TRAIN_ROWS = 2000
QUICK_TEST_ROWS = 1000
DESCRIPTION = (
    "Dense digit classifier, pixels scaled to [0, 1], one-hot labels, categorical "
    "cross-entropy: dropout keeping input and hidden units with probability p against the same "
    "network without dropout. Compare the training-test accuracy gap."
)


@dataclass(frozen=True)
class MnistOptions:
    train: Path
    test: Path
    experiment: str = DEFAULT_EXPERIMENT
    seed: int = 0
    quick: bool = False
    keep_probability: float = 0.7
    hidden_units: tuple[int, ...] = (512, 512)
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3


@dataclass(frozen=True)
class Digits:
    """Pixels as read (float32) and integer labels."""

    pixels: np.ndarray
    labels: np.ndarray

    def sample(self, rows: int, seed: int) -> Digits:
        if len(self.labels) <= rows:
            return self
        chosen = np.sort(np.random.default_rng(seed).choice(len(self.labels), rows, replace=False))
        return Digits(self.pixels[chosen], self.labels[chosen])


def _looks_numeric(name: object) -> bool:
    try:
        float(str(name))
    except ValueError:
        return False
    return True


def read_digits(path: Path) -> Digits:
    """Read a label-then-pixels CSV; raise ``ExperimentError`` (or ``DataError``) saying why not."""
    frame = read_table(path)
    first = str(frame.columns[0]).strip()
    if first.lower() != LABEL:
        if not all(_looks_numeric(name) for name in frame.columns):
            raise ExperimentError(
                f"{path.name}: the first column must be {LABEL!r}, then the pixel columns; "
                f"found {first!r}"
            )
        # No header row: the first line is an image, label first.
        frame = pd.read_csv(path, header=None)
    if frame.shape[1] < 2:
        raise ExperimentError(f"{path.name}: no pixel columns after the label")
    labels = frame.iloc[:, 0]
    pixels = frame.iloc[:, 1:]
    text = [str(c) for c in pixels.columns if not pd.api.types.is_numeric_dtype(pixels[c])]
    if text or not pd.api.types.is_numeric_dtype(labels):
        where = text[0] if text else LABEL
        raise ExperimentError(f"{path.name}: column {where!r} is not numeric")
    values = pixels.to_numpy(dtype=np.float32)
    if labels.isna().any() or not np.all(np.isfinite(values)):
        raise ExperimentError(f"{path.name}: has missing or non-finite values")
    if values.min() < 0:
        raise ExperimentError(f"{path.name}: has negative pixel values")
    label_values = labels.to_numpy(dtype=np.float64)
    if np.any(label_values < 0) or np.any(label_values != np.round(label_values)):
        raise ExperimentError(f"{path.name}: labels must be non-negative integers")
    return Digits(values, label_values.astype(np.int64))


def build_classifier(
    n_inputs: int, n_classes: int, options: MnistOptions, keep_probability: float
) -> Any:
    """Dense ReLU layers and a softmax output; dropout (rate 1 - p) on the input and after each
    hidden layer when p < 1."""
    keras = import_keras()
    keras.utils.set_random_seed(options.seed)
    rate = 1.0 - keep_probability
    inputs = keras.Input(shape=(n_inputs,), name="pixels")
    x = inputs
    if rate > 0:
        x = keras.layers.Dropout(rate, seed=options.seed, name="dropout_input")(x)
    for index, units in enumerate(options.hidden_units, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{index}")(x)
        if rate > 0:
            x = keras.layers.Dropout(rate, seed=options.seed + index, name=f"dropout_{index}")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="digit")(x)
    model = keras.Model(inputs, outputs, name="digit_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=options.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
    )
    return model


def _validate(options: MnistOptions) -> None:
    if not 0.0 < options.keep_probability < 1.0:
        raise ExperimentError(
            f"keep probability must lie in (0, 1) to compare with no dropout, "
            f"got {options.keep_probability}"
        )
    if not options.hidden_units or min(options.hidden_units) < 1:
        raise ExperimentError("hidden units must be one or more positive layer sizes")
    if options.epochs < 1 or options.batch_size < 1:
        raise ExperimentError("epochs and batch size must be >= 1")
    if not (math.isfinite(options.learning_rate) and options.learning_rate > 0):
        raise ExperimentError(f"learning rate must be > 0, got {options.learning_rate}")


def run_mnist(options: MnistOptions, say: Say) -> ExperimentResult:
    """Train with and without dropout; log both children and the gap charts."""
    _validate(options)
    train, test = read_digits(options.train), read_digits(options.test)
    if train.pixels.shape[1] != test.pixels.shape[1]:
        raise ExperimentError(
            f"{options.train.name} has {train.pixels.shape[1]} pixel columns but "
            f"{options.test.name} has {test.pixels.shape[1]}"
        )
    epochs = QUICK_EPOCHS if options.quick else options.epochs
    if options.quick:
        train = train.sample(QUICK_TRAIN_ROWS, options.seed)
        test = test.sample(QUICK_TEST_ROWS, options.seed)
    scale = float(train.pixels.max())
    if scale <= 0:
        raise ExperimentError(f"{options.train.name}: every pixel is 0")
    n_classes = int(max(train.labels.max(), test.labels.max())) + 1
    if n_classes < 2:
        raise ExperimentError(f"{options.train.name}: labels need at least two classes")
    keras = import_keras()
    x_train = train.pixels / scale
    # Scaled by the training maximum; a brighter test pixel is clipped to the same range.
    x_test = np.clip(test.pixels / scale, 0.0, 1.0)
    y_train = keras.utils.to_categorical(train.labels, n_classes)
    y_test = keras.utils.to_categorical(test.labels, n_classes)
    n_pixels = x_train.shape[1]
    say(
        f"{KIND}: {len(train.labels)} training and {len(test.labels)} test images of "
        f"{n_pixels} pixels, {n_classes} classes, {epochs} epochs per network"
    )

    def measure(model: Any) -> dict[str, float]:
        p_train = np.clip(predict(model, x_train), PROBABILITY_CLIP, 1.0)
        p_test = np.clip(predict(model, x_test), PROBABILITY_CLIP, 1.0)
        return {
            "train_loss": categorical_cross_entropy(y_train, p_train),
            "test_loss": categorical_cross_entropy(y_test, p_test),
            "train_accuracy": float(np.mean(p_train.argmax(axis=1) == train.labels)),
            "test_accuracy": float(np.mean(p_test.argmax(axis=1) == test.labels)),
        }

    common = {
        "hidden_units": "-".join(str(u) for u in options.hidden_units),
        "epochs": epochs,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "seed": options.seed,
    }
    params = {
        **common,
        "train_file": options.train.name,
        "test_file": options.test.name,
        "rows_train": len(train.labels),
        "rows_test": len(test.labels),
        "n_pixels": n_pixels,
        "n_classes": n_classes,
        "pixel_scale": scale,
        "quick": options.quick,
    }
    variants = [
        (NO_DROPOUT, 1.0),
        (f"keep_p={options.keep_probability:g}", options.keep_probability),
    ]
    curves: dict[str, Curves] = {}
    with parent_run(KIND, options.experiment, params, DESCRIPTION) as result:
        for index, (name, keep) in enumerate(variants, start=1):
            say(f"[{index}/{len(variants)}] {name}")
            child_params = {**common, "keep_probability": keep, "dropout_rate": round(1 - keep, 6)}
            with child_run(KIND, name, child_params):
                model = build_classifier(n_pixels, n_classes, options, keep)
                curves[name] = fit_with_epoch_metrics(
                    model,
                    x_train,
                    y_train,
                    epochs=epochs,
                    batch_size=options.batch_size,
                    measure=measure,
                    label=name,
                    say=say,
                )
                summary = {k: v[-1] for k, v in curves[name].items() if k != "objective"}
                summary["accuracy_gap"] = summary["train_accuracy"] - summary["test_accuracy"]
                summary["loss_gap"] = summary["test_loss"] - summary["train_loss"]
                mlflow.log_metrics(
                    {"accuracy_gap": summary["accuracy_gap"], "loss_gap": summary["loss_gap"]}
                )
                result.children[name] = summary
        result.add_chart(
            learning_curves_chart(curves, [("accuracy", "accuracy"), ("loss", "cross-entropy")]),
            "learning_curves.png",
        )
        result.add_chart(accuracy_gap_chart(curves), "accuracy_gap.png")
    return result


def accuracy_gap_chart(curves: dict[str, Curves]) -> Figure:
    """Training minus test accuracy per epoch, one line per child: the over-fitting gap."""
    figure = Figure(figsize=(5.6, 3.8), layout="constrained")
    ax = figure.subplots()
    for name, child in curves.items():
        gap = np.subtract(child["train_accuracy"], child["test_accuracy"])
        ax.plot(np.arange(1, len(gap) + 1), gap, "o-", markersize=3, label=name)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_title("training - test accuracy")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    return figure
