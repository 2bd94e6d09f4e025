"""The Keras DNN and its lean NumPy twin used for scoring.

Keras (and TensorFlow) are imported inside the functions that need them: the scoring service runs
the exported weights through :class:`ScoringNetwork` and never imports TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

# Layer names the scoring paths rely on: the pre-sigmoid logit and the probability output.
LOGIT_LAYER = "logit"
OUTPUT_LAYER = "probability_of_default"


# Rows whose activations mean_logits holds at once. Measured: scoring the 600,000 training rows of
# a 1M-row synthetic book in one piece held every layer's activations of the 3-member 256-128-64
# ensemble (3 x 600,000 x 256 float32 = 1.8 GB for the first layer alone) and took `loanrisk train`
# from 1.5 GB to a 5.5 GB peak (activations and ReLU masks of all three layers); a block of this
# many rows holds about 0.2 GB of them. A block's products can differ from one big product in the
# last bits of a logit (BLAS picks kernels by shape), so it is large enough that the bundled data
# files (at most 9,857 rows) are always one block.
LOGIT_BLOCK_ROWS = 16_384


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture and optimisation settings of the DNN.

    ``keep_probability`` is the lesson's p: the probability of *keeping* a unit during training.
    Keras's ``Dropout(rate)`` takes the probability of *dropping* one, so ``rate = 1 - p``;
    ``keep_probability = 1.0`` means no dropout.

    ``ensemble_size`` networks are trained from different seeds on the same rows and their logits
    averaged: seeds disagree most where data is thin, and the average ranks applicants better than
    any one of them. ``learning_rate`` is divided by ``lr_reduce_factor`` whenever the validation
    loss has not improved for ``lr_reduce_patience`` epochs (0: constant rate). Defaulted rows
    weigh ``positive_weight`` times a repaid row in the training loss (class weighting); the
    calibrator fitted afterwards on unweighted validation rows undoes the shift it causes in the
    probabilities.

    The class defaults are a plain single network (what the lesson experiments build on); the
    recipe ``loanrisk train`` and ``loanrisk benchmark`` use is :meth:`for_rows`, which sizes
    width, regularisation and batch size to the training data and trains a seed ensemble.
    """

    hidden_units: tuple[int, ...] = (64, 32)
    keep_probability: float = 0.7
    l2: float = 1e-4
    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 200
    early_stopping_patience: int = 15
    ensemble_size: int = 1
    lr_reduce_patience: int = 0
    lr_reduce_factor: float = 3.0
    positive_weight: float = 1.0

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
        if self.ensemble_size < 1:
            raise ValueError("ensemble_size must be at least 1")
        if self.lr_reduce_patience < 0 or self.lr_reduce_factor <= 1.0:
            raise ValueError("lr_reduce_patience must be non-negative and lr_reduce_factor > 1")
        if self.positive_weight <= 0:
            raise ValueError("positive_weight must be positive")

    @classmethod
    def for_rows(cls, n_train: int, **overrides: Any) -> NetworkConfig:
        """The default recipe for ``n_train`` training rows; ``overrides`` win over it.

        A seed ensemble of three, learning rate 3e-3 and early stopping after 10 epochs without
        improvement throughout. A few thousand rows get a 64-32 network, strongly regularised
        (dropout keeps half the units, L2 1e-3); smaller data a narrower one with smaller batches;
        large data a wider, deeper one with light regularisation and larger batches, which also
        keeps an epoch cheap on a CPU. See docs/quality.md for the measurements behind it.
        """
        recipe: dict[str, Any] = {
            "hidden_units": (64, 32),
            "keep_probability": 0.5,
            "l2": 1e-3,
            "learning_rate": 3e-3,
            "batch_size": 256,
            "early_stopping_patience": 10,
            "ensemble_size": 3,
        }
        if n_train < 2_000:
            # Small batches, so that an epoch is still a dozen or more updates.
            recipe |= {"hidden_units": (32, 16), "batch_size": 64}
        elif n_train >= 200_000:
            recipe |= {
                "hidden_units": (256, 128, 64),
                "keep_probability": 0.8,
                "l2": 1e-5,
                "batch_size": 1024,
            }
        elif n_train >= 20_000:
            recipe |= {
                "hidden_units": (128, 64),
                "keep_probability": 0.7,
                "l2": 1e-4,
                "batch_size": 512,
            }
        return cls(**(recipe | overrides))

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


def build_network(
    n_inputs: int, config: NetworkConfig, seed: int, prior: float | None = None
) -> keras.Model:
    """Dense ReLU layers, each with L2 weight decay and dropout, a linear ``logit`` unit and a
    sigmoid output.

    The logit has a layer of its own so that calibration can be applied to it; ``prior`` (the
    training default rate) starts the output bias at its log-odds, so the first epochs learn the
    ranking rather than the base rate.
    """
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
    bias = 0.0
    if prior is not None and 0.0 < prior < 1.0:
        bias = float(np.log(prior / (1.0 - prior)))
    logit = keras.layers.Dense(
        1, bias_initializer=keras.initializers.Constant(bias), name=LOGIT_LAYER
    )(x)
    outputs = keras.layers.Activation("sigmoid", name=OUTPUT_LAYER)(logit)
    model = keras.Model(inputs, outputs, name="loan_default_dnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc")],
    )
    return model


def combine_networks(members: list[keras.Model]) -> keras.Model:
    """One Keras model whose ``logit`` is the mean of the members' logits: the ensemble as the
    reference path runs it."""
    keras = import_keras()
    if len(members) == 1:
        return members[0]
    inputs = keras.Input(shape=(int(members[0].inputs[0].shape[1]),), name="features")
    logits = []
    for index, member in enumerate(members):
        member_logit = keras.Model(
            member.input, member.get_layer(LOGIT_LAYER).output, name=f"member_{index}"
        )
        logits.append(member_logit(inputs))
    logit = keras.layers.Average(name=LOGIT_LAYER)(logits)
    outputs = keras.layers.Activation("sigmoid", name=OUTPUT_LAYER)(logit)
    return keras.Model(inputs, outputs, name="loan_default_dnn_ensemble")


def keras_logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The model's logit per row, as float64.

    Models saved before the logit had a layer of its own end in a sigmoid ``Dense``; their logit is
    recovered from the probability, which is exact to float32 rounding.
    """
    keras = import_keras()
    layer_names = {layer.name for layer in model.layers}
    if LOGIT_LAYER in layer_names:
        head = keras.Model(model.input, model.get_layer(LOGIT_LAYER).output)
        return np.asarray(head(x, training=False), dtype=np.float64)[:, 0]
    p = np.asarray(model(x, training=False), dtype=np.float64)[:, 0]
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True, eq=False)
class MemberWeights:
    """One trained member's dense layers as plain float32 arrays: ReLU hidden layers, then the
    linear logit unit. Data only; :class:`ScoringNetwork` computes with it.

    ``weights[i]`` is ``(in, out)`` and ``biases[i]`` is ``(out,)``; the last pair is the logit
    layer, ``(units, 1)`` and ``(1,)``.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.weights) < 2 or len(self.weights) != len(self.biases):
            raise ValueError(
                "a network needs at least one hidden layer and one bias vector per weight matrix"
            )

    @classmethod
    def from_keras(cls, model: keras.Model) -> MemberWeights:
        """The ``Dense`` layers of a network built by :func:`build_network`, in order."""
        dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
        weights, biases = zip(*(layer.get_weights() for layer in dense), strict=True)
        return cls(
            tuple(np.asarray(w, dtype=np.float32) for w in weights),
            tuple(np.asarray(b, dtype=np.float32) for b in biases),
        )

    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(w.shape for w in self.weights)

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """``{prefix}w0, {prefix}b0, ...``: the keys ``network.npz`` stores them under."""
        arrays = {f"{prefix}w{i}": w for i, w in enumerate(self.weights)}
        arrays |= {f"{prefix}b{i}": b for i, b in enumerate(self.biases)}
        return arrays

    @classmethod
    def from_arrays(cls, data: Any, prefix: str = "") -> MemberWeights:
        count = len([k for k in data if k.startswith(f"{prefix}w")])
        return cls(
            tuple(np.asarray(data[f"{prefix}w{i}"]) for i in range(count)),
            tuple(np.asarray(data[f"{prefix}b{i}"]) for i in range(count)),
        )


@dataclass(frozen=True, eq=False)
class ScoringNetwork:
    """The trained network as NumPy arrays: an ensemble of one or more members (seeds), whose
    logit is the mean of the members' logits.

    Dropout is the identity at inference time, so these products reproduce the Keras model's
    ``model(x, training=False)`` exactly (up to float rounding) at a fraction of the cost for small
    batches.

    The members' layers are stacked for scoring: each hidden layer's weights as ``(members, in,
    out)``, multiplied in one ``matmul`` for all members; the output weights are divided by the
    number of members, because the ensemble's logit is the mean of theirs. A request then costs a
    few dozen NumPy calls whatever the ensemble size, and the gradient of the mean logit comes
    back through the same stacks.

    Every method takes encoded rows ``x`` (rows, inputs), float32 or float64. The names say what
    comes back: ``mean_logits`` one float64 per row (the members' mean logit, before calibration),
    ``first_layer_pre_activations`` per member and per row.
    """

    members: tuple[MemberWeights, ...]

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        if len({m.shapes() for m in self.members}) != 1:
            raise ValueError("ensemble members must have the same layer shapes")

    @classmethod
    def from_keras(cls, models: Sequence[keras.Model]) -> ScoringNetwork:
        """The NumPy twin of one Keras network, or of a seed ensemble's members."""
        return cls(tuple(MemberWeights.from_keras(m) for m in models))

    @property
    def n_inputs(self) -> int:
        return int(self.members[0].weights[0].shape[0])

    def save(self, path: Path) -> None:
        """Write ``network.npz``: one member as ``w0, b0, ...``, several as ``m0_w0, ...``."""
        if len(self.members) == 1:
            np.savez(path, allow_pickle=False, **self.members[0].arrays())
            return
        arrays: dict[str, np.ndarray] = {}
        for index, member in enumerate(self.members):
            arrays |= member.arrays(prefix=f"m{index}_")
        np.savez(path, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: Path) -> ScoringNetwork:
        """Read what :meth:`save` wrote."""
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        members = sorted({k.split("_", 1)[0] for k in arrays if k.startswith("m") and "_" in k})
        if not members:
            return cls((MemberWeights.from_arrays(arrays),))
        return cls(
            tuple(MemberWeights.from_arrays(arrays, prefix=f"m{i}_") for i in range(len(members)))
        )

    # The members' layers stacked for batched products, built on first use.

    @cached_property
    def _hidden_weights(self) -> tuple[np.ndarray, ...]:
        depth = len(self.members[0].weights) - 1
        return tuple(np.stack([m.weights[i] for m in self.members]) for i in range(depth))

    @cached_property
    def _hidden_biases(self) -> tuple[np.ndarray, ...]:
        depth = len(self.members[0].weights) - 1
        # Each (members, 1, out), to broadcast over rows.
        return tuple(
            np.stack([m.biases[i] for m in self.members])[:, None, :] for i in range(depth)
        )

    @cached_property
    def _output_weights(self) -> np.ndarray:
        # (members, units, 1), already divided by the number of members: the logit is their mean.
        return np.stack([m.weights[-1] for m in self.members]) / np.float32(len(self.members))

    @cached_property
    def _output_bias(self) -> float:
        return float(np.mean([m.biases[-1][0] for m in self.members]))

    @cached_property
    def _transposed(self) -> tuple[np.ndarray, ...]:
        # Contiguous (members, out, in) copies: the backward pass multiplies by these.
        return tuple(np.ascontiguousarray(w.transpose(0, 2, 1)) for w in self._hidden_weights)

    @cached_property
    def _output_row(self) -> np.ndarray:
        return np.ascontiguousarray(self._output_weights.transpose(0, 2, 1))  # (members, 1, units)

    def first_layer_pre_activations(self, x: np.ndarray) -> np.ndarray:
        """Pre-activations of every member's first layer, shape (members, rows, units)."""
        pre = x @ self._hidden_weights[0]  # (rows, inputs) @ (members, inputs, units)
        pre += self._hidden_biases[0]
        return pre

    def mean_logits(self, x: np.ndarray) -> np.ndarray:
        """The members' mean logit (log-odds of default, before calibration), one per row
        (float64), computed :data:`LOGIT_BLOCK_ROWS` rows at a time."""
        if len(x) <= LOGIT_BLOCK_ROWS:
            return self._forward(self.first_layer_pre_activations(x))[0]
        return np.concatenate(
            [
                self._forward(
                    self.first_layer_pre_activations(x[start : start + LOGIT_BLOCK_ROWS])
                )[0]
                for start in range(0, len(x), LOGIT_BLOCK_ROWS)
            ]
        )

    def mean_logit_gradient(self, x: np.ndarray) -> np.ndarray:
        """d mean logit / d x for each row, shaped like ``x``: what attributions build on."""
        _, masks = self._forward(self.first_layer_pre_activations(x))
        return self._input_gradient(self._backward(masks))

    def mean_logits_and_path_gradients(
        self, x: np.ndarray, start_pre: np.ndarray, alphas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean logits of the rows of ``x``, and for each row the gradient of the mean logit
        summed over the points ``start + alpha * (x - start)``: what integrated gradients needs.

        ``start_pre`` is ``first_layer_pre_activations(start)``. The first layer is affine, so its
        pre-activations along a straight path are ``start_pre + alpha * (first layer(x) -
        start_pre)``: no product per point. The gradients are summed over the points before the
        last product, which is linear too. The rows themselves ride along after their path points
        (their gradients are left out of the sum), so scoring and explaining share one forward
        pass. Points are laid out alpha by alpha, each a contiguous block of all rows: building
        the path and summing its gradients then run over long contiguous runs (a third faster
        than row by row).
        """
        n, steps = len(x), len(alphas)
        members = len(self.members)
        row_pre = self.first_layer_pre_activations(x)  # (members, n, units)
        units = row_pre.shape[2]
        slope = row_pre - start_pre
        pre = np.empty((members, steps + 1, n, units), dtype=row_pre.dtype)
        path = pre[:, :steps]
        np.multiply(alphas[None, :, None, None], slope[:, None], out=path)
        path += start_pre[:, None]
        pre[:, steps] = row_pre
        logits, masks = self._forward(pre.reshape(members, (steps + 1) * n, units))
        grads = self._backward(masks).reshape(members, steps + 1, n, units)
        summed = grads[:, 0].copy()
        for step in range(1, steps):
            summed += grads[:, step]
        return logits[steps * n :], self._input_gradient(summed)

    def _forward(self, pre: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Mean logits and ReLU masks, from first-layer pre-activations (members, rows, units).

        The masks are 0/1 in the activations' own dtype: ReLU is then a multiplication by the
        mask, in place, and so is its derivative on the way back (each about twice as fast as
        ``np.maximum`` and a multiplication by a boolean mask). A pre-activation of -inf would
        become NaN rather than 0; encoded inputs are clipped, so none is ever infinite.
        """
        masks = [_positive(pre)]
        h = np.multiply(pre, masks[0], out=pre)  # the pre-activations are only needed for masks
        for weights, bias in zip(self._hidden_weights[1:], self._hidden_biases[1:], strict=True):
            pre = h @ weights
            pre += bias
            masks.append(_positive(pre))
            h = np.multiply(pre, masks[-1], out=pre)
        logits = (h @ self._output_weights).sum(axis=0)[:, 0] + self._output_bias
        return logits.astype(np.float64), masks

    def _backward(self, masks: list[np.ndarray]) -> np.ndarray:
        """d(mean logit) / d(first layer's pre-activations), shaped like them."""
        grad = self._output_row * masks[-1]
        for transposed, mask in zip(
            reversed(self._transposed[1:]), reversed(masks[:-1]), strict=True
        ):
            grad = grad @ transposed
            grad *= mask
        return grad

    def _input_gradient(self, grad: np.ndarray) -> np.ndarray:
        """Through the first layer's weights, summing the members' shares."""
        return (grad @ self._transposed[0]).sum(axis=0)


def _positive(values: np.ndarray) -> np.ndarray:
    """1 where ``values`` > 0, else 0, in their dtype."""
    return np.greater(values, 0, out=np.empty_like(values), casting="unsafe")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (tanh never overflows; one pass, no masks)."""
    return 0.5 * np.tanh(0.5 * np.asarray(z, dtype=np.float64)) + 0.5
