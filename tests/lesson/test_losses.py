"""The NumPy losses against the lesson's worked examples and against keras.losses."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest

from lesson.losses import (
    binary_cross_entropy,
    categorical_cross_entropy,
    mean_absolute_error,
    mean_squared_error,
    sparse_categorical_cross_entropy,
)

# --- The lesson's worked examples -------------------------------------------------------------

ACTUAL = [10.2, 7.1, 17.2, 9.5, 11.5]
PREDICTED = [9.4, 6.9, 18.4, 11.3, 11.1]
# The outlier example: 9.5 replaced by 31.5.
ACTUAL_WITH_OUTLIER = [10.2, 7.1, 17.2, 31.5, 11.5]

# The lesson's seven-row categorical cross-entropy table (Samsung, Apple, LG): one-hot label,
# prediction, the lesson's printed cross-entropy and the exact value to 4 decimals. The lesson
# truncates rather than rounds (0.3567 -> 0.35, 0.1054 -> 0.1). Row 2 predicts 0 for a class
# whose label is 0: that term must contribute 0, not nan.
CCE_TABLE = [
    ([1, 0, 0], [0.6, 0.3, 0.1], 0.51, 0.5108),
    ([1, 0, 0], [0.9, 0.1, 0.0], 0.10, 0.1054),
    ([0, 1, 0], [0.2, 0.7, 0.1], 0.35, 0.3567),
    ([0, 0, 1], [0.3, 0.2, 0.5], 0.69, 0.6931),
    ([0, 1, 0], [0.6, 0.1, 0.3], 2.30, 2.3026),
    ([1, 0, 0], [0.5, 0.2, 0.3], 0.69, 0.6931),
    ([0, 0, 1], [0.1, 0.1, 0.8], 0.22, 0.2231),
]


def test_mae_matches_lesson_table():
    assert mean_absolute_error(ACTUAL, PREDICTED) == pytest.approx(0.88)


def test_mse_matches_lesson_table():
    assert mean_squared_error(ACTUAL, PREDICTED) == pytest.approx(1.104)


def test_outlier_example_inflates_mse_far_more_than_mae():
    assert mean_absolute_error(ACTUAL_WITH_OUTLIER, PREDICTED) == pytest.approx(4.56)
    assert mean_squared_error(ACTUAL_WITH_OUTLIER, PREDICTED) == pytest.approx(82.064)


def test_losses_return_python_floats():
    assert type(mean_absolute_error(ACTUAL, PREDICTED)) is float
    assert type(mean_squared_error(ACTUAL, PREDICTED)) is float
    assert type(binary_cross_entropy([1, 0], [0.6, 0.3])) is float
    assert type(categorical_cross_entropy([1, 0, 0], [0.6, 0.3, 0.1])) is float
    assert type(sparse_categorical_cross_entropy([0], [[0.6, 0.3, 0.1]])) is float


def test_cross_entropy_single_observation_is_0_51():
    assert round(categorical_cross_entropy([1, 0, 0], [0.6, 0.3, 0.1]), 2) == 0.51
    # The same observation in its other two encodings.
    assert round(sparse_categorical_cross_entropy([0], [[0.6, 0.3, 0.1]]), 2) == 0.51
    assert round(binary_cross_entropy([1], [0.6]), 2) == 0.51


@pytest.mark.parametrize(("actual", "predicted", "lesson_value", "exact"), CCE_TABLE)
def test_categorical_cross_entropy_lesson_table_row(actual, predicted, lesson_value, exact):
    value = categorical_cross_entropy([actual], [predicted])
    assert value == pytest.approx(exact, abs=5e-5)
    assert np.floor(value * 100) / 100 == pytest.approx(lesson_value)  # the lesson truncates


def test_categorical_cross_entropy_lesson_table_total_corrects_lesson_slip():
    """The lesson prints "(0.51 + ... + 0.22) / 7 = 4.76"; the correct mean is 0.6978.

    4.76 is an arithmetic slip: it is neither the mean (0.6978) nor the sum of the exact rows
    (4.8849), nor even the sum of the lesson's own rounded rows (4.86). We pin the true values.
    """
    actual = [row[0] for row in CCE_TABLE]
    predicted = [row[1] for row in CCE_TABLE]
    # Mean over rows, exactly as the lesson defines it: sum of per-row cross-entropies / N.
    mean = categorical_cross_entropy(actual, predicted)
    assert mean == pytest.approx(0.6978, abs=5e-5)
    assert mean * len(CCE_TABLE) == pytest.approx(4.8849, abs=5e-5)


def test_categorical_cross_entropy_zero_probability_off_label_is_not_nan():
    value = categorical_cross_entropy([[1, 0, 0]], [[0.9, 0.1, 0.0]])
    assert np.isfinite(value)
    assert value == pytest.approx(-np.log(0.9))


def test_zero_probability_on_the_true_class_is_infinite():
    assert categorical_cross_entropy([1, 0], [0.0, 1.0]) == np.inf
    assert sparse_categorical_cross_entropy([0], [[0.0, 1.0]]) == np.inf


def test_binary_cross_entropy_keeps_lesson_epsilon_finite_at_the_edges():
    # log(0 + 1e-15) instead of log(0): a confident wrong answer costs ~34.5, not inf.
    value = binary_cross_entropy([1, 0], [0.0, 1.0])
    assert value == pytest.approx(-np.log(1e-15))
    assert binary_cross_entropy([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-14)


def test_binary_cross_entropy_matches_lesson_loop():
    from math import log

    actual = [1, 0, 1, 1, 0]
    predicted = [0.9, 0.2, 0.6, 0.35, 0.01]
    total = 0.0
    for y, p in zip(actual, predicted, strict=True):
        total += y * log(1e-15 + p) + (1 - y) * log(1e-15 + (1 - p))
    assert binary_cross_entropy(actual, predicted) == pytest.approx(-total / len(actual))


def test_sparse_equals_categorical_with_one_hot_labels():
    rng = np.random.default_rng(3)
    predicted = rng.dirichlet(np.ones(4), size=9)
    labels = rng.integers(0, 4, size=9)
    assert sparse_categorical_cross_entropy(labels, predicted) == pytest.approx(
        categorical_cross_entropy(np.eye(4)[labels], predicted)
    )


def test_sparse_accepts_integral_float_labels():
    predicted = [[0.6, 0.4], [0.3, 0.7]]
    assert sparse_categorical_cross_entropy([0.0, 1.0], predicted) == pytest.approx(
        sparse_categorical_cross_entropy([0, 1], predicted)
    )


# --- Validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loss_fn",
    [mean_absolute_error, mean_squared_error, binary_cross_entropy, categorical_cross_entropy],
)
def test_shape_mismatch_raises(loss_fn):
    with pytest.raises(ValueError, match="same shape"):
        loss_fn([1.0, 0.0, 0.0], [0.5, 0.5])


@pytest.mark.parametrize(
    "loss_fn",
    [mean_absolute_error, mean_squared_error, binary_cross_entropy, categorical_cross_entropy],
)
def test_empty_input_raises(loss_fn):
    with pytest.raises(ValueError, match="empty"):
        loss_fn([], [])


def test_regression_losses_refuse_to_broadcast():
    with pytest.raises(ValueError, match="same shape"):
        mean_squared_error([[1.0], [2.0]], [1.0, 2.0])


def test_probabilities_outside_unit_interval_raise():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binary_cross_entropy([1, 0], [1.2, 0.1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        categorical_cross_entropy([1, 0], [-0.1, 1.1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sparse_categorical_cross_entropy([0], [[1.5, -0.5]])


def test_nan_raises():
    with pytest.raises(ValueError, match="NaN"):
        mean_absolute_error([1.0, np.nan], [1.0, 2.0])


def test_categorical_rejects_three_dimensional_input():
    with pytest.raises(ValueError, match="2-D"):
        categorical_cross_entropy(np.ones((2, 2, 2)) / 2, np.ones((2, 2, 2)) / 2)


@pytest.mark.parametrize(
    ("labels", "predicted", "message"),
    [
        ([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]], "3 entries but predicted has 2 rows"),
        ([[0], [1]], [[0.5, 0.5], [0.5, 0.5]], "1-D"),
        ([0, 1], [0.5, 0.5], "2-D"),
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], r"\[0, 1\]"),
        ([0, -1], [[0.5, 0.5], [0.5, 0.5]], r"\[0, 1\]"),
        ([0.5, 1.0], [[0.5, 0.5], [0.5, 0.5]], "integer"),
        (["a", "b"], [[0.5, 0.5], [0.5, 0.5]], "integer"),
    ],
)
def test_sparse_validation(labels, predicted, message):
    with pytest.raises(ValueError, match=message):
        sparse_categorical_cross_entropy(labels, predicted)


# --- Agreement with keras.losses on seeded random inputs --------------------------------------
# Keras computes in float32 and clips probabilities to [1e-7, 1 - 1e-7]; probabilities are kept
# in [0.01, 0.99] so clipping never bites and float32 rounding is the only difference.

KERAS_RTOL = 1e-5


def _keras(loss: keras.losses.Loss, y_true, y_pred) -> float:
    return float(keras.ops.convert_to_numpy(loss(y_true, y_pred)))


def _probability_rows(rng, n_rows, n_classes):
    raw = rng.uniform(0.2, 1.0, size=(n_rows, n_classes))
    rows = raw / raw.sum(axis=1, keepdims=True)
    assert rows.min() >= 0.01 and rows.max() <= 0.99
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_losses_match_keras(seed):
    rng = np.random.default_rng(seed)
    actual = rng.normal(10.0, 5.0, size=(32, 3))
    predicted = actual + rng.normal(0.0, 2.0, size=(32, 3))
    assert mean_absolute_error(actual, predicted) == pytest.approx(
        _keras(keras.losses.MeanAbsoluteError(), actual, predicted), rel=KERAS_RTOL
    )
    assert mean_squared_error(actual, predicted) == pytest.approx(
        _keras(keras.losses.MeanSquaredError(), actual, predicted), rel=KERAS_RTOL
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_cross_entropy_matches_keras(seed):
    rng = np.random.default_rng(seed)
    actual = rng.integers(0, 2, size=(64, 1)).astype(np.float64)
    predicted = rng.uniform(0.01, 0.99, size=(64, 1))
    assert binary_cross_entropy(actual, predicted) == pytest.approx(
        _keras(keras.losses.BinaryCrossentropy(), actual, predicted), rel=KERAS_RTOL
    )


@pytest.mark.parametrize(("seed", "n_classes"), [(0, 3), (1, 5), (2, 10)])
def test_categorical_cross_entropies_match_keras(seed, n_classes):
    rng = np.random.default_rng(seed)
    predicted = _probability_rows(rng, 40, n_classes)
    labels = rng.integers(0, n_classes, size=40)
    one_hot = np.eye(n_classes)[labels]
    assert categorical_cross_entropy(one_hot, predicted) == pytest.approx(
        _keras(keras.losses.CategoricalCrossentropy(), one_hot, predicted), rel=KERAS_RTOL
    )
    assert sparse_categorical_cross_entropy(labels, predicted) == pytest.approx(
        _keras(keras.losses.SparseCategoricalCrossentropy(), labels, predicted), rel=KERAS_RTOL
    )
