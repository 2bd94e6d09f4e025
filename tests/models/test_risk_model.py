"""The two scoring paths give the same calibrated probabilities."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.calibration import Calibrator
from models.contract import infer_contract
from models.network import (
    NetworkConfig,
    ScoringNetwork,
    build_network,
    combine_networks,
    sigmoid,
)
from models.preprocessing import Preprocessor
from models.risk_model import CALIBRATION_FILE, KerasReference, RiskModel
from tests.conftest import README_APPLICANT


def saved_model(
    directory: Path, frame: pd.DataFrame, members: int, calibrator: Calibrator
) -> RiskModel:
    contract = infer_contract(frame.drop(columns=["Age", "Marital"]), "Status", "bad")
    preprocessor = Preprocessor.fit(frame, contract)
    config = NetworkConfig(hidden_units=(16, 8), ensemble_size=members)
    networks = [
        build_network(preprocessor.width, config, seed=7 + index, prior=0.3)
        for index in range(members)
    ]
    # Random weights are enough for parity; scale the output layer so probabilities spread out.
    for network in networks:
        layer = network.get_layer("logit")
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 8.0, bias])
    network = ScoringNetwork.from_keras(networks)
    model = RiskModel(contract, preprocessor, network, calibrator=calibrator)
    model.save(directory, keras_model=combine_networks(networks))
    return model


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize(
    "calibrator",
    [
        Calibrator(method="platt", a=0.8, b=-0.3),
        Calibrator(method="isotonic", knots=(-3.0, -1.0, 0.0, 2.0), values=(0.02, 0.1, 0.3, 0.9)),
    ],
    ids=["platt", "isotonic"],
)
def test_numpy_and_keras_paths_return_equal_calibrated_probabilities(
    tmp_path: Path, credit_frame: pd.DataFrame, members: int, calibrator: Calibrator
) -> None:
    saved_model(tmp_path, credit_frame, members, calibrator)
    rows = credit_frame.sample(300, random_state=0)
    lean = RiskModel.load(tmp_path)
    reference = KerasReference(tmp_path)
    assert lean.calibrator == calibrator == reference.calibrator
    numpy_path = lean.score_frame(rows)
    keras_path = reference.score_frame(rows)
    np.testing.assert_allclose(numpy_path, keras_path, atol=1e-6)
    # The records path (the service's) agrees with the frame path.
    records = [README_APPLICANT, rows.iloc[0].to_dict()]
    np.testing.assert_allclose(
        lean.score_records(records), lean.score_frame(pd.DataFrame(records)), atol=1e-12
    )
    # Calibration is really applied: the answers are not the raw network's sigmoid.
    raw = sigmoid(lean.network.mean_logits(lean.preprocessor.transform(rows)))
    assert np.max(np.abs(raw - numpy_path)) > 1e-3


def test_ensemble_is_the_mean_logit_of_its_members_and_round_trips(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    model = saved_model(tmp_path, credit_frame, 3, Calibrator())
    x = model.preprocessor.transform(credit_frame.head(50))
    members = model.network.members
    assert len(members) == 3
    expected = np.mean([ScoringNetwork((m,)).mean_logits(x) for m in members], axis=0)
    np.testing.assert_allclose(model.network.mean_logits(x), expected, atol=1e-6)
    loaded = ScoringNetwork.load(tmp_path / "network.npz")
    assert len(loaded.members) == 3
    np.testing.assert_allclose(loaded.mean_logits(x), expected, atol=1e-6)


def test_logit_gradient_matches_finite_differences(credit_frame: pd.DataFrame, tmp_path) -> None:
    model = saved_model(tmp_path, credit_frame, 3, Calibrator())
    x = model.preprocessor.transform(credit_frame.head(5)).astype(np.float64)
    gradient = model.network.mean_logit_gradient(x)
    step = 1e-4
    for column in range(3):
        bumped = x.copy()
        bumped[:, column] += step
        numeric = (model.network.mean_logits(bumped) - model.network.mean_logits(x)) / step
        np.testing.assert_allclose(gradient[:, column], numeric, atol=1e-2)


def test_model_saved_without_a_calibrator_scores_uncalibrated(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    model = saved_model(tmp_path, credit_frame, 1, Calibrator(method="platt", a=0.5, b=0.1))
    (tmp_path / CALIBRATION_FILE).unlink()
    loaded = RiskModel.load(tmp_path)
    assert loaded.calibrator == Calibrator()
    x = model.preprocessor.transform(credit_frame.head(20))
    np.testing.assert_allclose(
        loaded.score_frame(credit_frame.head(20)), sigmoid(model.network.mean_logits(x)), atol=1e-6
    )


def test_reason_contributions_are_in_the_calibrated_log_odds(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    platt = Calibrator(method="platt", a=0.5, b=0.2)
    calibrated = saved_model(tmp_path / "platt", credit_frame, 3, platt)
    plain = RiskModel(calibrated.contract, calibrated.preprocessor, calibrated.network)
    x = calibrated.preprocessor.transform(credit_frame.head(10))
    np.testing.assert_allclose(
        calibrated.explainer.contributions(x),
        0.5 * plain.explainer.contributions(x),
        rtol=1e-5,
        atol=1e-7,
    )
