"""Forward and backward propagation for a small dense binary classifier, in plain NumPy.

This makes the lesson's training loop explicit: ReLU hidden layers, one sigmoid output unit,
and the regularised cost

    C = C0 + lambda / (2n) * sum(w ** 2)

where C0 is the mean binary cross-entropy over the n samples and the sum runs over every
weight (not the biases). Everything is float64. Shapes follow the Keras ``Dense`` convention:
``weights[l]`` is ``(fan_in, fan_out)`` and ``biases[l]`` is ``(fan_out,)``; inputs are
``(n_samples, n_inputs)``.

The cross-entropy is computed from the output logit z as ``softplus(z) - y * z``, which equals
``-(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))`` but stays finite when the sigmoid
saturates, and whose gradient with respect to z is exactly ``(sigmoid(z) - y) / n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "DenseNetwork",
    "ForwardCache",
    "Gradients",
    "backward",
    "forward",
    "loss",
    "train_gradient_descent",
]


@dataclass
class DenseNetwork:
    """Weights and biases of a dense network with ReLU hidden layers and one sigmoid output."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def __post_init__(self) -> None:
        self.weights = [np.array(w, dtype=np.float64) for w in self.weights]
        self.biases = [np.array(b, dtype=np.float64) for b in self.biases]
        if not self.weights:
            raise ValueError("a network needs at least one layer")
        if len(self.weights) != len(self.biases):
            raise ValueError(
                f"got {len(self.weights)} weight matrices but {len(self.biases)} bias vectors"
            )
        for index, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or 0 in w.shape:
                raise ValueError(f"weights[{index}] must be a non-empty 2-D array, got {w.shape}")
            if b.shape != (w.shape[1],):
                raise ValueError(
                    f"biases[{index}] must have shape ({w.shape[1]},) to match weights[{index}] "
                    f"{w.shape}, got {b.shape}"
                )
            if index > 0 and w.shape[0] != self.weights[index - 1].shape[1]:
                raise ValueError(
                    f"weights[{index}] expects {w.shape[0]} inputs but layer {index - 1} has "
                    f"{self.weights[index - 1].shape[1]} units"
                )
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise ValueError(f"layer {index} contains NaN or infinite parameters")
        if self.weights[-1].shape[1] != 1:
            raise ValueError(
                f"the output layer must have exactly 1 unit, got {self.weights[-1].shape[1]}"
            )

    @classmethod
    def initialise(
        cls, n_inputs: int, hidden_units: Sequence[int], seed: int | None = None
    ) -> DenseNetwork:
        """He-initialised network: weights ~ N(0, 2 / fan_in), biases 0.

        ``hidden_units`` lists the width of each ReLU hidden layer (may be empty, which gives
        logistic regression); the sigmoid output layer is added automatically.
        """
        sizes = [n_inputs, *hidden_units, 1]
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
                raise ValueError(f"layer sizes must be positive integers, got {sizes[:-1]}")
        rng = np.random.default_rng(seed)
        weights = [
            rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
            for fan_in, fan_out in pairwise(sizes)
        ]
        biases = [np.zeros(fan_out) for fan_out in sizes[1:]]
        return cls(weights, biases)

    @property
    def n_inputs(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(n_inputs, *hidden_units, 1)``."""
        return (self.n_inputs, *(int(w.shape[1]) for w in self.weights))

    def copy(self) -> DenseNetwork:
        return DenseNetwork([w.copy() for w in self.weights], [b.copy() for b in self.biases])


@dataclass(frozen=True)
class ForwardCache:
    """What the backward pass needs from the forward pass.

    ``activations[0]`` is the input and ``activations[l + 1]`` the output of layer l;
    ``pre_activations[l]`` is layer l's ``a @ W + b`` (the last one is the output logit).
    """

    activations: list[np.ndarray]
    pre_activations: list[np.ndarray]

    @property
    def n_samples(self) -> int:
        return int(self.activations[0].shape[0])

    @property
    def logits(self) -> np.ndarray:
        """Output-unit logits, shape ``(n_samples,)``."""
        return self.pre_activations[-1][:, 0]


@dataclass(frozen=True)
class Gradients:
    """Gradients of the cost, shaped like ``DenseNetwork.weights`` and ``.biases``."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))  # never overflows
    return np.where(z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _check_inputs(network: DenseNetwork, x: ArrayLike) -> np.ndarray:
    inputs = np.asarray(x, dtype=np.float64)
    if inputs.ndim != 2:
        raise ValueError(f"x must be 2-D (n_samples, n_inputs), got shape {inputs.shape}")
    if inputs.shape[0] == 0:
        raise ValueError("x has no samples")
    if inputs.shape[1] != network.n_inputs:
        raise ValueError(
            f"x has {inputs.shape[1]} features but the network expects {network.n_inputs}"
        )
    if not np.all(np.isfinite(inputs)):
        raise ValueError("x contains NaN or infinite values")
    return inputs


def _check_targets(y: ArrayLike, n_samples: int) -> np.ndarray:
    targets = np.asarray(y, dtype=np.float64)
    if targets.ndim == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if targets.shape != (n_samples,):
        raise ValueError(
            f"y must have shape ({n_samples},) or ({n_samples}, 1) to match x, got {np.shape(y)}"
        )
    if not np.all(np.isfinite(targets)) or np.any(targets < 0.0) or np.any(targets > 1.0):
        raise ValueError("y must hold targets in [0, 1]")
    return targets


def _check_l2(l2: float) -> float:
    if not (math.isfinite(l2) and l2 >= 0.0):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2}")
    return float(l2)


def _check_cache(network: DenseNetwork, cache: ForwardCache) -> None:
    n_layers = len(network.weights)
    if len(cache.pre_activations) != n_layers or len(cache.activations) != n_layers + 1:
        raise ValueError(
            f"cache has {len(cache.pre_activations)} layers but the network has {n_layers}"
        )
    for index, w in enumerate(network.weights):
        if cache.pre_activations[index].shape != (cache.n_samples, w.shape[1]):
            raise ValueError(f"cache does not match the network at layer {index}")


def forward(network: DenseNetwork, x: ArrayLike) -> tuple[np.ndarray, ForwardCache]:
    """Propagate ``x`` through the network.

    Returns the output probabilities, shape ``(n_samples,)``, and the cache for ``backward``.
    """
    a = _check_inputs(network, x)
    activations = [a]
    pre_activations = []
    last = len(network.weights) - 1
    for index, (w, b) in enumerate(zip(network.weights, network.biases, strict=True)):
        z = a @ w + b
        a = _sigmoid(z) if index == last else np.maximum(z, 0.0)
        pre_activations.append(z)
        activations.append(a)
    return a[:, 0], ForwardCache(activations, pre_activations)


def _l2_penalty(network: DenseNetwork, l2: float, n_samples: int) -> float:
    if l2 == 0.0:
        return 0.0
    return l2 / (2.0 * n_samples) * sum(float(np.sum(w * w)) for w in network.weights)


def _cost(network: DenseNetwork, cache: ForwardCache, y: np.ndarray, l2: float) -> float:
    z = cache.logits
    cross_entropy = float(np.mean(np.logaddexp(0.0, z) - y * z))
    return cross_entropy + _l2_penalty(network, l2, cache.n_samples)


def loss(network: DenseNetwork, x: ArrayLike, y: ArrayLike, l2: float = 0.0) -> float:
    """Mean binary cross-entropy of the network on ``(x, y)`` plus ``l2 / (2n) * sum(w**2)``."""
    l2 = _check_l2(l2)
    _, cache = forward(network, x)
    return _cost(network, cache, _check_targets(y, cache.n_samples), l2)


def backward(
    network: DenseNetwork, cache: ForwardCache, y: ArrayLike, l2: float = 0.0
) -> Gradients:
    """Gradients of ``loss(network, x, y, l2)`` with respect to every weight and bias.

    ``cache`` must come from ``forward(network, x)`` with the network's current parameters.
    """
    l2 = _check_l2(l2)
    _check_cache(network, cache)
    n = cache.n_samples
    targets = _check_targets(y, n)

    # dC/dz at the output: sigmoid + cross-entropy collapse to (p - y) / n.
    delta = (cache.activations[-1] - targets[:, np.newaxis]) / n
    weight_grads: list[np.ndarray] = [np.empty(0)] * len(network.weights)
    bias_grads: list[np.ndarray] = [np.empty(0)] * len(network.weights)
    for index in reversed(range(len(network.weights))):
        w = network.weights[index]
        weight_grads[index] = cache.activations[index].T @ delta + (l2 / n) * w
        bias_grads[index] = delta.sum(axis=0)
        if index > 0:
            # Back through the weights, then through the ReLU (derivative 1 where z > 0).
            delta = (delta @ w.T) * (cache.pre_activations[index - 1] > 0.0)
    return Gradients(weight_grads, bias_grads)


def train_gradient_descent(
    network: DenseNetwork,
    x: ArrayLike,
    y: ArrayLike,
    *,
    learning_rate: float,
    epochs: int,
    l2: float = 0.0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Full-batch gradient descent, updating ``network`` in place.

    Each epoch runs one forward pass, one backward pass and one update
    ``param -= learning_rate * grad``. Returns the loss of each epoch, measured on the forward
    pass before that epoch's update (as Keras reports it), and calls ``on_epoch(epoch, loss)``
    with the 0-based epoch index after each update.
    """
    if not (math.isfinite(learning_rate) and learning_rate > 0.0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate}")
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    l2 = _check_l2(l2)
    inputs = _check_inputs(network, x)
    targets = _check_targets(y, inputs.shape[0])

    history: list[float] = []
    for epoch in range(epochs):
        _, cache = forward(network, inputs)
        epoch_loss = _cost(network, cache, targets, l2)
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(
                f"loss became {epoch_loss} at epoch {epoch}; try a smaller learning_rate"
            )
        grads = backward(network, cache, targets, l2)
        for param, grad in zip(network.weights, grads.weights, strict=True):
            param -= learning_rate * grad
        for param, grad in zip(network.biases, grads.biases, strict=True):
            param -= learning_rate * grad
        history.append(epoch_loss)
        if on_epoch is not None:
            on_epoch(epoch, epoch_loss)
    return history
