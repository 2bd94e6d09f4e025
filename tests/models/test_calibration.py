import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from models.calibration import Calibrator, fit_calibrator, fit_isotonic, fit_platt
from models.network import sigmoid
from training.evaluate import expected_calibration_error


def miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True log-odds z, outcomes drawn from them, and an overconfident, shifted model's logits."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.2, size=n)
    y = (rng.random(n) < sigmoid(z)).astype(int)
    model_logits = 2.5 * z + 1.0
    return z, y, model_logits


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_fitted_on_held_out_rows_reduces_ece_on_new_rows(method: str) -> None:
    _, y_fit, logits_fit = miscalibrated(4000, seed=0)
    _, y_new, logits_new = miscalibrated(4000, seed=1)
    before = expected_calibration_error(y_new, sigmoid(logits_new))
    calibrator = fit_calibrator(logits_fit, y_fit, method)
    after = expected_calibration_error(y_new, calibrator.apply(logits_new))
    assert before > 0.1
    assert after < 0.03
    assert after < before / 4


def test_platt_recovers_the_distortion_and_matches_scikit_learn() -> None:
    _, y, logits = miscalibrated(20000, seed=2)
    platt = fit_platt(logits, y)
    # logits = 2.5 z + 1, so the true correction is z = 0.4 * logits - 0.4.
    assert platt.a == pytest.approx(0.4, abs=0.03)
    assert platt.b == pytest.approx(-0.4, abs=0.05)
    reference = LogisticRegression(C=1e12, max_iter=1000).fit(logits[:, None], y)
    assert platt.a == pytest.approx(reference.coef_[0, 0], rel=1e-4)
    assert platt.b == pytest.approx(reference.intercept_[0], abs=1e-4)


def test_isotonic_apply_equals_scikit_learn_predict() -> None:
    _, y, logits = miscalibrated(3000, seed=3)
    calibrator = fit_isotonic(logits, y)
    reference = IsotonicRegression(y_min=1e-6, y_max=1 - 1e-6, out_of_bounds="clip").fit(logits, y)
    grid = np.linspace(logits.min() - 2, logits.max() + 2, 500)
    np.testing.assert_allclose(calibrator.apply(grid), reference.predict(grid), atol=1e-12)


@pytest.mark.parametrize("method", ["identity", "platt", "isotonic"])
def test_calibrator_round_trips_through_plain_json(tmp_path, method: str) -> None:
    _, y, logits = miscalibrated(500, seed=4)
    calibrator = fit_calibrator(logits, y, method)
    calibrator.save(tmp_path / "calibration.json")
    # Plain JSON: numbers and lists only, nothing pickled.
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert data["method"] == method
    loaded = Calibrator.load(tmp_path / "calibration.json")
    np.testing.assert_array_equal(loaded.apply(logits), calibrator.apply(logits))


def test_identity_is_the_sigmoid_and_platt_keeps_the_ranking() -> None:
    logits = np.linspace(-5, 5, 101)
    np.testing.assert_allclose(Calibrator().apply(logits), sigmoid(logits), atol=1e-6)
    platt = Calibrator(method="platt", a=0.7, b=-0.3)
    assert np.all(np.diff(platt.apply(logits)) > 0)


def test_calibration_needs_both_outcomes() -> None:
    with pytest.raises(ValueError, match="both outcomes"):
        fit_calibrator(np.zeros(10), np.zeros(10), "platt")


# calibration.json exactly as registered models carry it.
SAVED_ISOTONIC = """{
  "method": "isotonic",
  "knots": [
    -1.5,
    0.25,
    2.0
  ],
  "values": [
    0.05,
    0.2,
    0.7
  ]
}
"""


def test_a_saved_calibrator_loads_and_saves_back_to_the_same_json(tmp_path) -> None:
    (tmp_path / "calibration.json").write_text(SAVED_ISOTONIC)
    calibrator = Calibrator.load(tmp_path / "calibration.json")
    assert calibrator == Calibrator("isotonic", knots=(-1.5, 0.25, 2.0), values=(0.05, 0.2, 0.7))
    calibrator.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == SAVED_ISOTONIC
    (tmp_path / "platt.json").write_text('{"method": "platt", "a": 1, "b": -0.5}')
    assert Calibrator.load(tmp_path / "platt.json") == Calibrator("platt", a=1.0, b=-0.5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"method": "isotonic", "knots": [0, "x"], "values": [0.1, 0.2]}', r"knots\.1"),
        ('{"method": "sigmoid"}', "method"),
        ('{"method": "isotonic", "knots": [0, 1], "values": [0.5, 0.2]}', "non-decreasing"),
    ],
)
def test_a_damaged_calibrator_is_refused_with_the_reason(
    tmp_path, content: str, message: str
) -> None:
    (tmp_path / "calibration.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        Calibrator.load(tmp_path / "calibration.json")
