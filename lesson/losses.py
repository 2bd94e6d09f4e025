"""Loss functions from the deep-neural-networks lesson, written out in NumPy.

Each function takes array-likes and returns the mean loss over samples as a Python float.
They are reference implementations (for teaching, tests and sanity checks), not training code:
the Keras model uses ``keras.losses``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "BCE_EPSILON",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "mean_absolute_error",
    "mean_squared_error",
    "sparse_categorical_cross_entropy",
]

BCE_EPSILON = 1e-15
"""Added inside the logarithms of the binary cross-entropy, as in the lesson's code."""


def _as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError(f"{name} is empty; a mean loss needs at least one value")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _pair(actual: ArrayLike, predicted: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = _as_float_array(actual, "actual")
    p = _as_float_array(predicted, "predicted")
    if y.shape != p.shape:
        raise ValueError(
            f"actual and predicted must have the same shape, got {y.shape} and {p.shape}"
        )
    return y, p


def _check_unit_interval(array: np.ndarray, name: str) -> None:
    if np.any(array < 0.0) or np.any(array > 1.0):
        raise ValueError(f"{name} must lie in [0, 1]")


def _as_sample_rows(array: np.ndarray, name: str) -> np.ndarray:
    """A 1-D vector is one sample; a 2-D array has one sample per row."""
    if array.ndim == 1:
        return array[np.newaxis, :]
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 1-D (one sample) or 2-D (samples x classes), got {array.ndim}-D"
        )
    return array


def mean_absolute_error(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean of ``|actual - predicted|`` over all elements."""
    y, p = _pair(actual, predicted)
    return float(np.mean(np.abs(y - p)))


def mean_squared_error(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean of ``(actual - predicted) ** 2`` over all elements."""
    y, p = _pair(actual, predicted)
    return float(np.mean((y - p) ** 2))


def binary_cross_entropy(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean of ``-(y log(p + 1e-15) + (1 - y) log(1 - p + 1e-15))``.

    ``actual`` holds targets in [0, 1] (usually 0 or 1) and ``predicted`` the probability of
    class 1, element for element. The 1e-15 keeps p = 0 or p = 1 finite, as in the lesson.
    """
    y, p = _pair(actual, predicted)
    _check_unit_interval(y, "actual")
    _check_unit_interval(p, "predicted")
    per_element = y * np.log(p + BCE_EPSILON) + (1.0 - y) * np.log(1.0 - p + BCE_EPSILON)
    return float(-np.mean(per_element))


def categorical_cross_entropy(actual_one_hot: ArrayLike, predicted: ArrayLike) -> float:
    """Mean over samples (rows) of ``-sum(y * log(p))``, natural log.

    A 1-D pair is treated as a single sample. Terms where the target is 0 are skipped, so a
    predicted probability of 0 for a wrong class contributes nothing (rather than 0 * -inf =
    nan); a probability of 0 for a true class gives ``inf``. Targets may be soft (any
    distribution), not only one-hot.
    """
    y, p = _pair(actual_one_hot, predicted)
    y = _as_sample_rows(y, "actual_one_hot")
    p = _as_sample_rows(p, "predicted")
    _check_unit_interval(y, "actual_one_hot")
    _check_unit_interval(p, "predicted")
    terms = np.zeros_like(p)
    relevant = y > 0.0
    with np.errstate(divide="ignore"):  # log(0) on a true class is a genuine inf loss
        terms[relevant] = y[relevant] * np.log(p[relevant])
    return float(np.mean(-np.sum(terms, axis=1)))


def sparse_categorical_cross_entropy(labels: ArrayLike, predicted: ArrayLike) -> float:
    """Mean over samples of ``-log(p[i, labels[i]])``, natural log.

    ``labels`` is a 1-D sequence of integer class indices, one per row of the 2-D
    ``predicted`` (samples x classes). A probability of 0 for the true class gives ``inf``.
    """
    p = _as_float_array(predicted, "predicted")
    if p.ndim != 2:
        raise ValueError(f"predicted must be 2-D (samples x classes), got shape {p.shape}")
    _check_unit_interval(p, "predicted")
    raw = np.asarray(labels)
    if raw.ndim != 1:
        raise ValueError(f"labels must be 1-D (one class index per sample), got shape {raw.shape}")
    if raw.shape[0] != p.shape[0]:
        raise ValueError(f"labels has {raw.shape[0]} entries but predicted has {p.shape[0]} rows")
    if raw.dtype.kind not in "iu" and not (
        raw.dtype.kind == "f" and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw))
    ):
        raise ValueError(f"labels must be integer class indices, got dtype {raw.dtype}")
    indices = raw.astype(np.int64)
    n_classes = p.shape[1]
    if np.any(indices < 0) or np.any(indices >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}] for {n_classes} classes")
    chosen = p[np.arange(p.shape[0]), indices]
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(chosen)))
