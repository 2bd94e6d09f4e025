import numpy as np
import pandas as pd
import pytest

from models.contract import infer_contract
from models.preprocessing import Preprocessor
from models.reference import TrainingReference, psi


@pytest.fixture
def reference(credit_frame: pd.DataFrame) -> TrainingReference:
    contract = infer_contract(credit_frame.drop(columns=["Age", "Marital"]), "Status", "bad")
    frame = credit_frame[contract.names]
    pre = Preprocessor.fit(frame, contract)
    probabilities = np.random.default_rng(0).uniform(0, 1, len(frame))
    return TrainingReference.fit(frame, contract, pre, probabilities)


def records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def test_psi_is_zero_for_identical_distributions() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(0.0)


def test_psi_matches_a_hand_computed_case() -> None:
    expected = (0.3 - 0.5) * np.log(0.3 / 0.5) + (0.7 - 0.5) * np.log(0.7 / 0.5)
    assert psi([0.5, 0.5], [0.3, 0.7]) == pytest.approx(expected)


def test_training_like_traffic_is_stable_and_shifted_traffic_is_not(
    reference: TrainingReference, credit_frame: pd.DataFrame
) -> None:
    sample = credit_frame.sample(1000, random_state=0)
    stable = reference.feature_psi(records(sample))
    assert max(stable.values()) < 0.1
    shifted = sample.assign(Income=sample["Income"] * 3, Home="rent")
    drifted = reference.feature_psi(records(shifted))
    assert drifted["Income"] > 0.25
    assert drifted["Home"] > 0.25
    assert drifted["Amount"] < 0.1


def test_score_psi_detects_a_shift(reference: TrainingReference) -> None:
    rng = np.random.default_rng(1)
    assert reference.score_psi(rng.uniform(0, 1, 2000)) < 0.05
    assert reference.score_psi(rng.uniform(0.8, 1, 2000)) > 1.0


def test_round_trip(tmp_path, reference: TrainingReference) -> None:
    reference.save(tmp_path / "reference.json")
    assert TrainingReference.load(tmp_path / "reference.json") == reference


# reference.json exactly as registered models carry it.
SAVED_REFERENCE = (
    '{"baseline": [0.5, 0.25, 1.0], "numeric": [{"name": "amount", "median": 100.0, '
    '"edges": [84.0, 130.10000000000002], "proportions": [0.25, 0.25, 0.25, 0.25]}], '
    '"categorical": [{"name": "home", "mode": "rent", "categories": ["rent", "own"], '
    '"proportions": [0.5, 0.25, 0.25]}], "score_edges": [0.16000000000000003, 0.25], '
    '"score_proportions": [0.25, 0.5, 0.25]}\n'
)


def test_a_saved_reference_loads_and_saves_back_to_the_same_json(tmp_path) -> None:
    (tmp_path / "reference.json").write_text(SAVED_REFERENCE)
    loaded = TrainingReference.load(tmp_path / "reference.json")
    assert loaded.numeric[0].edges == [84.0, 130.10000000000002]
    assert loaded.categorical[0].mode == "rent"
    loaded.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == SAVED_REFERENCE


def test_a_damaged_reference_names_the_field(tmp_path) -> None:
    (tmp_path / "reference.json").write_text(SAVED_REFERENCE.replace("84.0", '"low"'))
    with pytest.raises(ValueError, match=r"numeric\.0\.edges\.0"):
        TrainingReference.load(tmp_path / "reference.json")
