"""The Keras DNN and its lean NumPy twin used for scoring.

Keras (and TensorFlow) are imported inside the functions that need them: the scoring service runs
the exported weights through :class:`DenseStack` and never imports TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture and optimisation settings of the DNN.

    ``keep_probability`` is the lesson's p: the probability of *keeping* a unit during training.
    Keras's ``Dropout(rate)`` takes the probability of *dropping* one, so ``rate = 1 - p``;
    ``keep_probability = 1.0`` means no dropout.
    """

    hidden_units: tuple[int, ...] = (64, 32)
    keep_probability: float = 0.7
    l2: float = 1e-4
    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 200
    early_stopping_patience: int = 15

    def __post_init__(self) -> None:
        if not self.hidden_units or any(int(u) < 1 for u in self.hidden_units):
            raise ValueError("hidden_units must be one or more positive layer sizes")
        if not 0.0 < self.keep_probability <= 1.0:
            raise ValueError("keep_probability must be in (0, 1]: it is the chance a unit is kept")
        if self.l2 < 0:
            raise ValueError("l2 must be non-negative")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.batch_size < 1 or self.epochs < 1 or self.early_stopping_patience < 0:
            raise ValueError("batch_size and epochs must be positive, patience non-negative")

    @property
    def dropout_rate(self) -> float:
        """The Keras ``Dropout`` rate: the probability of dropping a unit."""
        return 1.0 - self.keep_probability

    def to_params(self) -> dict[str, Any]:
        """Flat parameters for MLflow, naming both dropout conventions."""
        params = asdict(self)
        params["hidden_units"] = "-".join(str(u) for u in self.hidden_units)
        params["dropout_rate"] = round(self.dropout_rate, 6)
        return params


def import_keras() -> Any:
    """Import Keras 3 on the TensorFlow backend (the backend must be chosen before import)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def build_network(n_inputs: int, config: NetworkConfig, seed: int) -> keras.Model:
    """Dense ReLU layers, each with L2 weight decay and dropout, and one sigmoid output."""
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    regulariser = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    inputs = keras.Input(shape=(n_inputs,), name="features")
    x = inputs
    for index, units in enumerate(config.hidden_units, start=1):
        x = keras.layers.Dense(
            int(units), activation="relu", kernel_regularizer=regulariser, name=f"hidden_{index}"
        )(x)
        if config.dropout_rate > 0:
            x = keras.layers.Dropout(
                config.dropout_rate, seed=seed + index, name=f"dropout_{index}"
            )(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="probability_of_default")(x)
    model = keras.Model(inputs, outputs, name="loan_default_dnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc")],
    )
    return model


@dataclass(frozen=True)
class DenseStack:
    """The trained network's dense layers as plain arrays: ReLU hidden layers, sigmoid output.

    Dropout is the identity at inference time, so these products reproduce ``model(x,
    training=False)`` exactly (up to float rounding) at a fraction of the cost for small batches.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    @classmethod
    def from_keras(cls, model: keras.Model) -> DenseStack:
        dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
        weights, biases = zip(*(layer.get_weights() for layer in dense), strict=True)
        return cls(
            tuple(np.asarray(w, dtype=np.float32) for w in weights),
            tuple(np.asarray(b, dtype=np.float32) for b in biases),
        )

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = np.maximum(h @ w + b, 0.0)
        return (h @ self.weights[-1] + self.biases[-1])[:, 0]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(x))

    @property
    def n_inputs(self) -> int:
        return int(self.weights[0].shape[0])

    def save(self, path: Path) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        arrays |= {f"b{i}": b for i, b in enumerate(self.biases)}
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> DenseStack:
        with np.load(path) as data:
            count = len([k for k in data.files if k.startswith("w")])
            return cls(
                tuple(data[f"w{i}"] for i in range(count)),
                tuple(data[f"b{i}"] for i in range(count)),
            )


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    exp_z = np.exp(z[~positive])
    out[~positive] = exp_z / (1.0 + exp_z)
    return out
