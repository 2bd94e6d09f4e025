"""The NumPy forward/backward pass against TensorFlow autodiff and finite differences."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest
import tensorflow as tf

from lesson.backprop import (
    DenseNetwork,
    ForwardCache,
    backward,
    forward,
    loss,
    train_gradient_descent,
)
from lesson.losses import binary_cross_entropy


def _random_problem(seed: int, n_samples: int, n_inputs: int, hidden_units: tuple[int, ...]):
    rng = np.random.default_rng(seed)
    network = DenseNetwork.initialise(n_inputs, hidden_units, seed=seed)
    # Non-zero biases so the bias gradients are exercised away from the initial point.
    network.biases = [rng.normal(0.0, 0.1, size=b.shape) for b in network.biases]
    x = rng.normal(size=(n_samples, n_inputs))
    y = rng.integers(0, 2, size=n_samples).astype(np.float64)
    return network, x, y


def _tensorflow_loss_and_gradients(network: DenseNetwork, x, y, l2: float):
    """The same cost written independently with TensorFlow ops, differentiated by GradientTape.

    The cross-entropy is the textbook -(y log p + (1 - y) log(1 - p)) on sigmoid outputs, not
    the softplus form the NumPy code uses, so the two share no implementation tricks.
    """
    weights = [tf.Variable(w, dtype=tf.float64) for w in network.weights]
    biases = [tf.Variable(b, dtype=tf.float64) for b in network.biases]
    inputs = tf.constant(x, dtype=tf.float64)
    targets = tf.constant(y, dtype=tf.float64)
    n = tf.cast(tf.shape(inputs)[0], tf.float64)
    with tf.GradientTape() as tape:
        a = inputs
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            a = tf.nn.relu(tf.matmul(a, w) + b)
        p = tf.sigmoid(tf.matmul(a, weights[-1]) + biases[-1])[:, 0]
        cross_entropy = -tf.reduce_mean(
            targets * tf.math.log(p) + (1 - targets) * tf.math.log(1 - p)
        )
        penalty = l2 / (2.0 * n) * tf.add_n([tf.reduce_sum(tf.square(w)) for w in weights])
        cost = cross_entropy + penalty
    weight_grads, bias_grads = tape.gradient(cost, (weights, biases))
    return (
        float(cost.numpy()),
        [g.numpy() for g in weight_grads],
        [g.numpy() for g in bias_grads],
    )


# --- Agreement with TensorFlow autodiff ------------------------------------------------------

SHAPES = [
    # (n_samples, n_inputs, hidden_units)
    (1, 3, (4,)),
    (16, 5, ()),  # no hidden layer: logistic regression
    (32, 8, (16, 8)),
    (50, 4, (6, 6, 6)),
    (7, 12, (3,)),
]


@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize(("n_samples", "n_inputs", "hidden_units"), SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_match_tensorflow_gradient_tape(seed, n_samples, n_inputs, hidden_units, l2):
    network, x, y = _random_problem(seed, n_samples, n_inputs, hidden_units)
    tf_cost, tf_weight_grads, tf_bias_grads = _tensorflow_loss_and_gradients(network, x, y, l2)

    _, cache = forward(network, x)
    grads = backward(network, cache, y, l2)

    assert loss(network, x, y, l2) == pytest.approx(tf_cost, rel=1e-12, abs=1e-12)
    assert len(grads.weights) == len(tf_weight_grads) == len(network.weights)
    for ours, theirs, w in zip(grads.weights, tf_weight_grads, network.weights, strict=True):
        assert ours.shape == theirs.shape == w.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    for ours, theirs, b in zip(grads.biases, tf_bias_grads, network.biases, strict=True):
        assert ours.shape == theirs.shape == b.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_l2_penalty_touches_weights_only():
    network, x, y = _random_problem(3, 20, 4, (5,))
    _, cache = forward(network, x)
    plain = backward(network, cache, y, l2=0.0)
    regularised = backward(network, cache, y, l2=2.0)
    for g0, g2, w in zip(plain.weights, regularised.weights, network.weights, strict=True):
        np.testing.assert_allclose(g2 - g0, 2.0 / 20 * w, atol=1e-12)
    for g0, g2 in zip(plain.biases, regularised.biases, strict=True):
        np.testing.assert_array_equal(g0, g2)
    squared_weights = sum(float(np.sum(w**2)) for w in network.weights)
    assert loss(network, x, y, 2.0) - loss(network, x, y, 0.0) == pytest.approx(
        2.0 / (2 * 20) * squared_weights
    )


# --- Numerical gradient check ----------------------------------------------------------------


@pytest.mark.parametrize("l2", [0.0, 0.5])
def test_gradients_match_central_finite_differences(l2):
    network, x, y = _random_problem(7, 6, 3, (4, 3))
    _, cache = forward(network, x)
    grads = backward(network, cache, y, l2)
    step = 1e-6

    for params, analytic in [(network.weights, grads.weights), (network.biases, grads.biases)]:
        for param, grad in zip(params, analytic, strict=True):
            numeric = np.zeros_like(param)
            for index in np.ndindex(param.shape):
                original = param[index]
                param[index] = original + step
                upper = loss(network, x, y, l2)
                param[index] = original - step
                lower = loss(network, x, y, l2)
                param[index] = original
                numeric[index] = (upper - lower) / (2 * step)
            np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


# --- Forward pass and loss ---------------------------------------------------------------------


def test_forward_shapes_and_probability_range():
    network, x, _ = _random_problem(0, 10, 4, (5, 3))
    probabilities, cache = forward(network, x)
    assert probabilities.shape == (10,)
    assert probabilities.dtype == np.float64
    assert np.all((probabilities > 0) & (probabilities < 1))
    assert isinstance(cache, ForwardCache)
    assert [a.shape for a in cache.activations] == [(10, 4), (10, 5), (10, 3), (10, 1)]
    assert all(np.all(a >= 0) for a in cache.activations[1:-1])  # ReLU outputs


def test_loss_equals_lesson_binary_cross_entropy_plus_penalty():
    network, x, y = _random_problem(4, 25, 3, (4,))
    probabilities, _ = forward(network, x)
    penalty = 0.7 / (2 * 25) * sum(float(np.sum(w**2)) for w in network.weights)
    assert loss(network, x, y, 0.7) == pytest.approx(
        binary_cross_entropy(y, probabilities) + penalty, rel=1e-10
    )


def test_loss_stays_finite_when_the_sigmoid_saturates():
    network = DenseNetwork([np.array([[1000.0]])], [np.array([0.0])])
    x = np.array([[1.0], [-1.0]])
    # Confidently wrong on both samples: each costs ~1000 nats, not inf.
    assert loss(network, x, [0.0, 1.0]) == pytest.approx(1000.0)
    _, cache = forward(network, x)
    grads = backward(network, cache, [0.0, 1.0])
    np.testing.assert_allclose(grads.weights[0], [[1.0]])


def test_initialise_is_seeded_he_normal():
    a = DenseNetwork.initialise(400, (300,), seed=11)
    b = DenseNetwork.initialise(400, (300,), seed=11)
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert a.layer_sizes == (400, 300, 1)
    assert a.n_inputs == 400
    assert [w.shape for w in a.weights] == [(400, 300), (300, 1)]
    assert [b.shape for b in a.biases] == [(300,), (1,)]
    assert all(np.all(bias == 0) for bias in a.biases)
    assert np.std(a.weights[0]) == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert a.weights[0].dtype == np.float64


# --- Gradient descent ------------------------------------------------------------------------


def _separable_dataset(seed: int = 0, n_per_class: int = 40):
    rng = np.random.default_rng(seed)
    positives = rng.normal(loc=(2.0, 2.0), scale=0.5, size=(n_per_class, 2))
    negatives = rng.normal(loc=(-2.0, -2.0), scale=0.5, size=(n_per_class, 2))
    x = np.vstack([positives, negatives])
    y = np.concatenate([np.ones(n_per_class), np.zeros(n_per_class)])
    return x, y


@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_gradient_descent_decreases_loss_on_separable_data(l2):
    x, y = _separable_dataset()
    network = DenseNetwork.initialise(2, (8, 4), seed=0)
    initial_loss = loss(network, x, y, l2)
    seen: list[tuple[int, float]] = []

    history = train_gradient_descent(
        network,
        x,
        y,
        learning_rate=0.1,
        epochs=100,
        l2=l2,
        on_epoch=lambda epoch, value: seen.append((epoch, value)),
    )

    assert len(history) == 100
    assert all(isinstance(value, float) for value in history)
    assert seen == list(enumerate(history))
    assert history[0] == pytest.approx(initial_loss)  # measured before the first update
    assert np.all(np.diff(history) <= 1e-12)  # small steps: monotone descent
    assert history[-1] < 0.1 * history[0]
    assert loss(network, x, y, l2) < history[-1]
    probabilities, _ = forward(network, x)
    assert np.array_equal(probabilities > 0.5, y == 1)


def test_gradient_descent_with_zero_epochs_changes_nothing():
    x, y = _separable_dataset()
    network = DenseNetwork.initialise(2, (3,), seed=0)
    before = network.copy()
    assert train_gradient_descent(network, x, y, learning_rate=0.1, epochs=0) == []
    for w0, w1 in zip(before.weights, network.weights, strict=True):
        np.testing.assert_array_equal(w0, w1)


def test_network_copies_its_parameters():
    w, b = np.ones((2, 1)), np.zeros(1)
    network = DenseNetwork([w], [b])
    x, y = _separable_dataset()
    train_gradient_descent(network, x, y, learning_rate=0.1, epochs=3)
    np.testing.assert_array_equal(w, np.ones((2, 1)))  # the caller's array is untouched


# --- Validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "biases", "message"),
    [
        ([], [], "at least one layer"),
        ([np.ones((3, 1))], [], "1 weight matrices but 0 bias"),
        ([np.ones((3, 4)), np.ones((5, 1))], [np.zeros(4), np.zeros(1)], "expects 5 inputs"),
        ([np.ones((3, 4)), np.ones((4, 1))], [np.zeros(3), np.zeros(1)], r"biases\[0\]"),
        ([np.ones((3, 2))], [np.zeros(2)], "exactly 1 unit"),
        ([np.ones(3)], [np.zeros(1)], "2-D"),
        ([np.full((3, 1), np.nan)], [np.zeros(1)], "NaN"),
    ],
)
def test_malformed_network_raises(weights, biases, message):
    with pytest.raises(ValueError, match=message):
        DenseNetwork(weights, biases)


@pytest.mark.parametrize(
    ("n_inputs", "hidden_units"), [(0, (3,)), (3, (0,)), (3, (-2,)), (3, (2.5,)), (True, ())]
)
def test_initialise_rejects_bad_sizes(n_inputs, hidden_units):
    with pytest.raises(ValueError, match="positive integers"):
        DenseNetwork.initialise(n_inputs, hidden_units, seed=0)


def test_input_shape_errors_raise():
    network = DenseNetwork.initialise(3, (4,), seed=0)
    with pytest.raises(ValueError, match="expects 3"):
        forward(network, np.ones((5, 2)))
    with pytest.raises(ValueError, match="2-D"):
        forward(network, np.ones(3))
    with pytest.raises(ValueError, match="no samples"):
        forward(network, np.ones((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        forward(network, np.full((2, 3), np.nan))


def test_target_shape_errors_raise():
    network = DenseNetwork.initialise(3, (4,), seed=0)
    x = np.ones((5, 3))
    _, cache = forward(network, x)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        loss(network, x, np.ones(4))
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        backward(network, cache, np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        backward(network, cache, np.full(5, 2.0))
    # A column vector of targets is accepted, as Keras accepts it.
    backward(network, cache, np.ones((5, 1)))


def test_cache_from_another_network_raises():
    network = DenseNetwork.initialise(3, (4,), seed=0)
    other = DenseNetwork.initialise(3, (4, 2), seed=0)
    _, cache = forward(other, np.ones((2, 3)))
    with pytest.raises(ValueError, match="cache"):
        backward(network, cache, np.ones(2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0.0, "epochs": 1}, "learning_rate"),
        ({"learning_rate": float("nan"), "epochs": 1}, "learning_rate"),
        ({"learning_rate": 0.1, "epochs": -1}, "epochs"),
        ({"learning_rate": 0.1, "epochs": 1.5}, "epochs"),
        ({"learning_rate": 0.1, "epochs": 1, "l2": -0.1}, "l2"),
    ],
)
def test_bad_training_arguments_raise(kwargs, message):
    x, y = _separable_dataset()
    network = DenseNetwork.initialise(2, (3,), seed=0)
    with pytest.raises(ValueError, match=message):
        train_gradient_descent(network, x, y, **kwargs)
