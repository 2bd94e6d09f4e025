"""The promotion gate, each branch against a real MLflow SQLite registry."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from models.calibration import Calibrator
from models.mlflow_flavor import log_risk_model
from models.network import MemberWeights, NetworkConfig, ScoringNetwork, build_network
from models.preprocessing import Preprocessor
from models.registered import RegistryError, RegistryFailure, load_registered
from models.risk_model import RiskModel
from tests.conftest import CREDIT_DATA
from tests.loan_data import write_loans
from training.data import Dataset, load_dataset
from training.fairness import fairness_gate
from training.gate import (
    CHALLENGER,
    TAG_DECISION,
    TAG_FORCED,
    TAG_REASON,
    ChampionScore,
    apply_decision,
    decide,
    score_champion,
)
from training.registry import CHAMPION, alias_version, register


def linear_model(dataset: Dataset, coefficients: np.ndarray | None, sign: float) -> RiskModel:
    """A network computing exactly ``sign * (v . x)``: two ReLU units, relu(z) - relu(-z)."""
    preprocessor = Preprocessor.fit(dataset.features, dataset.contract)
    x = preprocessor.transform(dataset.features)
    if coefficients is None:
        coefficients = LogisticRegression(max_iter=2000).fit(x, dataset.y).coef_[0]
    v = (sign * coefficients).astype(np.float32)
    member = MemberWeights(
        weights=(np.stack([v, -v], axis=1), np.array([[1.0], [-1.0]], dtype=np.float32)),
        biases=(np.zeros(2, dtype=np.float32), np.zeros(1, dtype=np.float32)),
    )
    return RiskModel(
        dataset.contract, preprocessor, ScoringNetwork((member,)), calibrator=Calibrator()
    )


def logged_uri(model: RiskModel, dataset: Dataset) -> str:
    """Log ``model`` (with an equivalent Keras network for the pyfunc) and return its URI."""
    keras_model = build_network(model.preprocessor.width, NetworkConfig(hidden_units=(2,)), 0)
    (member,) = model.network.members
    keras_model.set_weights(
        [w for pair in zip(member.weights, member.biases, strict=True) for w in pair]
    )
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
        directory = Path(tmp) / "risk_model"
        model.save(directory, keras_model=keras_model)
        return log_risk_model(directory, model.contract, dataset.features).model_uri


@dataclass
class GateStore:
    loans: Dataset
    good: str
    bad: str
    foreign: str
    good_auc: float
    bad_auc: float


@pytest.fixture(scope="module")
def gate_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GateStore]:
    """One SQLite store holding a good, a bad and a foreign-feature model, logged once."""
    directory = tmp_path_factory.mktemp("gate")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{directory / 'mlflow.db'}")
        patch.chdir(directory)
        from models.mlflow_flavor import use_tracking

        use_tracking()
        # The active experiment is process-wide too: an earlier test's would not exist here.
        mlflow.set_experiment("gate-models")
        loans = load_dataset(write_loans(directory, rows=400, seed=3))
        good = linear_model(loans, None, 1.0)
        bad = linear_model(loans, good.network.members[0].weights[0][:, 0], -1.0)
        credit = load_dataset(CREDIT_DATA)
        foreign = linear_model(credit, None, 1.0)
        scores = {
            name: float(roc_auc_score(loans.y, model.score_frame(loans.features)))
            for name, model in (("good", good), ("bad", bad))
        }
        yield GateStore(
            loans=loans,
            good=logged_uri(good, loans),
            bad=logged_uri(bad, loans),
            foreign=logged_uri(foreign, credit),
            good_auc=scores["good"],
            bad_auc=scores["bad"],
        )


@pytest.fixture
def store(gate_store: GateStore) -> GateStore:
    mlflow.set_experiment("gate-tests")
    return gate_store


def candidate_run() -> str:
    with mlflow.start_run() as run:
        return run.info.run_id


def gate(
    store: GateStore,
    name: str,
    candidate_uri: str,
    candidate_auc: float,
    baselines: dict[str, float],
    margin: float = 0.0,
    force: bool = False,
) -> tuple[str, str, dict[str, str]]:
    """Run the gate as training does: score the champion, decide, register, apply."""
    champion = score_champion(name, store.loans.features, store.loans.y)
    decision = decide(candidate_auc, baselines, champion, margin=margin, force=force)
    registration = register(candidate_uri, name, decision.alias)
    run_id = candidate_run()
    apply_decision(name, registration.version, run_id, decision)
    return registration.version, decision.alias, MlflowClient().get_run(run_id).data.tags


def test_models_have_the_intended_quality(store: GateStore) -> None:
    assert store.good_auc > 0.7 > 0.3 > store.bad_auc


def test_first_version_becomes_champion_when_it_beats_the_baselines(store: GateStore) -> None:
    version, alias, tags = gate(store, "first", store.good, store.good_auc, {"logreg": 0.6})
    assert alias == CHAMPION and alias_version("first", CHAMPION) == version
    assert tags[TAG_DECISION] == "promoted" and tags[TAG_FORCED] == "false"
    assert "no current champion" in tags[TAG_REASON]


def test_better_candidate_takes_the_champion_alias(store: GateStore) -> None:
    register(store.bad, "better", CHAMPION)
    champion = score_champion("better", store.loans.features, store.loans.y)
    assert champion.version == "1" and champion.auc == pytest.approx(store.bad_auc)
    version, alias, tags = gate(store, "better", store.good, store.good_auc, {"logreg": 0.6})
    assert alias == CHAMPION and alias_version("better", CHAMPION) == version == "2"
    assert "champion version 1" in tags[TAG_REASON]


def test_worse_candidate_becomes_challenger_with_the_reason(store: GateStore) -> None:
    register(store.good, "worse", CHAMPION)
    version, alias, tags = gate(store, "worse", store.bad, store.bad_auc, {})
    assert alias == CHALLENGER
    assert alias_version("worse", CHAMPION) == "1"
    assert alias_version("worse", CHALLENGER) == version == "2"
    assert tags[TAG_DECISION] == "held"
    assert "below champion version 1" in tags[TAG_REASON]
    version_tags = MlflowClient().get_model_version("worse", version).tags
    assert version_tags[TAG_REASON] == tags[TAG_REASON]


def test_margin_is_required_over_an_equal_champion(store: GateStore) -> None:
    register(store.good, "margin", CHAMPION)
    _, alias, _ = gate(store, "margin", store.good, store.good_auc, {}, margin=0.0)
    assert alias == CHAMPION  # equal AUC passes with no margin
    _, alias, tags = gate(store, "margin", store.good, store.good_auc, {}, margin=0.01)
    assert alias == CHALLENGER and "plus margin 0.01" in tags[TAG_REASON]
    # A negative margin tolerates a small drop.
    _, alias, _ = gate(store, "margin", store.good, store.good_auc - 0.005, {}, margin=-0.01)
    assert alias == CHAMPION


def test_candidate_losing_to_a_baseline_is_held(store: GateStore) -> None:
    _, alias, tags = gate(
        store, "baseline", store.good, store.good_auc, {"logreg": 0.5, "lightgbm": 0.99}
    )
    assert alias == CHALLENGER and alias_version("baseline", CHAMPION) is None
    assert "does not beat lightgbm's 0.9900" in tags[TAG_REASON]
    assert "logreg" not in tags[TAG_REASON]


def test_champion_that_cannot_score_the_test_split_blocks_promotion(store: GateStore) -> None:
    register(store.foreign, "foreign", CHAMPION)
    champion = score_champion("foreign", store.loans.features, store.loans.y)
    assert champion.version == "1" and champion.auc is None and champion.error
    _, alias, tags = gate(store, "foreign", store.good, store.good_auc, {})
    assert alias == CHALLENGER and "could not be scored" in tags[TAG_REASON]


def test_force_promote_overrides_the_gate_and_is_recorded(store: GateStore) -> None:
    register(store.good, "forced", CHAMPION)
    version, alias, tags = gate(
        store, "forced", store.bad, store.bad_auc, {"logreg": 0.7}, force=True
    )
    assert alias == CHAMPION and alias_version("forced", CHAMPION) == version
    assert tags[TAG_DECISION] == "forced" and tags[TAG_FORCED] == "true"
    assert tags[TAG_REASON].startswith("forced promotion (")
    assert "below champion" in tags[TAG_REASON] and "logreg" in tags[TAG_REASON]


def test_a_registered_version_loads_by_alias_or_by_number(store: GateStore) -> None:
    register(store.bad, "loading", CHAMPION)
    register(store.good, "loading", CHALLENGER)
    by_alias = load_registered("loading", alias=CHALLENGER)
    by_number = load_registered("loading", version="2")
    assert (
        (by_alias.name, by_alias.version) == (by_number.name, by_number.version) == ("loading", "2")
    )
    assert by_alias.run_id == MlflowClient().get_model_version("loading", "2").run_id is not None
    auc = roc_auc_score(store.loans.y, by_alias.risk_model.score_frame(store.loans.features))
    assert auc == pytest.approx(store.good_auc)
    with pytest.raises(RegistryError) as missing:
        load_registered("loading", version="3")
    assert missing.value.failure is RegistryFailure.NOT_FOUND
    with pytest.raises(RegistryError) as no_alias:
        load_registered("loading", alias="retired")
    assert no_alias.value.failure is RegistryFailure.NOT_FOUND


def test_decide_names_every_failed_rule() -> None:
    decision = decide(
        0.70, {"logreg": 0.72, "lightgbm": 0.69}, ChampionScore("3", 0.75), margin=0.0
    )
    assert not decision.promote and decision.alias == CHALLENGER
    assert "below champion version 3" in decision.reason and "logreg" in decision.reason
    assert "lightgbm" not in decision.reason


def test_the_fairness_rule_holds_a_version_that_passes_every_other_rule() -> None:
    metrics = {"fairness_air_min": 0.62, "fairness_air_min__race": 0.62}
    reason = fairness_gate(metrics, 0.8)
    held = decide(0.80, {"logreg": 0.72}, ChampionScore(), fairness_failure=reason)
    assert not held.promote and held.alias == CHALLENGER and held.outcome == "held"
    assert held.reason == "fairness_air_min 0.620 (race) is below --min-air 0.8"
    passed = decide(0.80, {"logreg": 0.72}, ChampionScore(), fairness_failure=None)
    assert passed.promote and "min-air" not in passed.reason


def test_a_forced_promotion_records_the_fairness_rule_it_overrode() -> None:
    reason = fairness_gate({"fairness_air_min": 0.5}, 0.8)
    forced = decide(0.70, {"logreg": 0.72}, ChampionScore(), force=True, fairness_failure=reason)
    assert forced.promote and forced.forced and forced.outcome == "forced"
    assert "logreg" in forced.reason and "below --min-air 0.8" in forced.reason
