"""Probability calibration as plain parameters, applied in NumPy by every scoring path.

A calibrator maps the network's logit to a calibrated probability of default. It is fitted on the
validation split (never on the rows the network was fitted on, never on the test split) and saved as
JSON inside the model directory, so the service's NumPy path and the Keras reference path apply the
very same numbers. Nothing is pickled.

Two methods:

* ``platt``: ``p = sigmoid(a * logit + b)``, two numbers. Strictly monotone for ``a > 0``, so it
  never changes the ranking (ROC AUC) of the applicants.
* ``isotonic``: a non-decreasing step function of the logit, stored as knots and interpolated
  linearly between them (the same rule as scikit-learn's ``IsotonicRegression``). More flexible,
  but it needs more data and it ties applicants within a step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import TypeAdapter

from .network import sigmoid

CalibrationMethod = Literal["identity", "platt", "isotonic"]
# Probabilities are kept this far from 0 and 1, so that log loss stays finite and a logit can be
# taken back from any calibrated probability.
PROBABILITY_FLOOR = 1e-6


@dataclass(frozen=True)
class Calibrator:
    """Maps logits to calibrated probabilities; ``identity`` is the plain sigmoid."""

    method: CalibrationMethod = "identity"
    a: float = 1.0
    b: float = 0.0
    knots: tuple[float, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in ("identity", "platt", "isotonic"):
            raise ValueError(f"unknown calibration method {self.method!r}")
        if self.method == "isotonic":
            if len(self.knots) < 1 or len(self.knots) != len(self.values):
                raise ValueError("isotonic calibration needs as many values as knots, at least one")
            if np.any(np.diff(self.knots) < 0) or np.any(np.diff(self.values) < 0):
                raise ValueError("isotonic knots and values must be non-decreasing")

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for an array of logits."""
        z = np.asarray(logits, dtype=np.float64)
        if self.method == "platt":
            p = sigmoid(self.a * z + self.b)
        elif self.method == "isotonic":
            p = np.interp(z, np.asarray(self.knots), np.asarray(self.values))
        else:
            p = sigmoid(z)
        return np.clip(p, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)

    @property
    def logit_scale(self) -> float:
        """How much one unit of the network's logit moves the calibrated log-odds: ``a`` for Platt;
        1 otherwise (isotonic has no single slope, and keeps the order of the logits)."""
        return self.a if self.method == "platt" else 1.0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method}
        if self.method == "platt":
            data |= {"a": self.a, "b": self.b}
        if self.method == "isotonic":
            data |= {"knots": list(self.knots), "values": list(self.values)}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """The calibrator that :meth:`to_dict` wrote (absent keys take their defaults); raise
        pydantic's ValidationError (a ValueError naming the bad field, e.g. ``knots.2``)."""
        return _calibrator_adapter().validate_python(data)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Calibrator:
        """Read ``calibration.json``; raise ValidationError as :meth:`from_dict` does."""
        return _calibrator_adapter().validate_json(path.read_bytes())


@cache
def _calibrator_adapter() -> TypeAdapter[Calibrator]:
    # Built on first use, not at import; validates the frozen dataclass above in place, then runs
    # its __post_init__ checks.
    return TypeAdapter(Calibrator)


def fit_platt(logits: np.ndarray, y: np.ndarray, iterations: int = 100) -> Calibrator:
    """Maximum-likelihood ``a, b`` by Newton's method on the two-parameter logistic model.

    A small ridge on the Hessian keeps the step finite when the classes separate perfectly.
    """
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    design = np.column_stack([z, np.ones_like(z)])
    params = np.array([1.0, 0.0])
    for _ in range(iterations):
        p = sigmoid(design @ params)
        gradient = design.T @ (p - t)
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        params -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return Calibrator(method="platt", a=float(params[0]), b=float(params[1]))


def fit_isotonic(logits: np.ndarray, y: np.ndarray) -> Calibrator:
    """Pool-adjacent-violators fit of the default rate as a non-decreasing function of the logit."""
    from sklearn.isotonic import IsotonicRegression

    regression = IsotonicRegression(
        y_min=PROBABILITY_FLOOR, y_max=1.0 - PROBABILITY_FLOOR, out_of_bounds="clip"
    )
    regression.fit(np.asarray(logits, dtype=np.float64), np.asarray(y, dtype=np.float64))
    # Only the fitted knots are kept: plain arrays, interpolated by np.interp exactly as
    # IsotonicRegression.predict does, with the same clipping beyond the end knots.
    return Calibrator(
        method="isotonic",
        knots=tuple(float(v) for v in regression.X_thresholds_),
        values=tuple(float(v) for v in regression.y_thresholds_),
    )


def fit_calibrator(
    logits: np.ndarray, y: np.ndarray, method: CalibrationMethod = "platt"
) -> Calibrator:
    """Fit ``method`` on held-out logits and outcomes (the validation split)."""
    if method == "identity":
        return Calibrator()
    if len(np.unique(y)) < 2:
        raise ValueError("calibration needs both outcomes among the held-out rows")
    if method == "platt":
        return fit_platt(logits, y)
    if method == "isotonic":
        return fit_isotonic(logits, y)
    raise ValueError(f"unknown calibration method {method!r}")
