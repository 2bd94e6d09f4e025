"""A challenger scored in the shadow of the champion (``LOANRISK_SHADOW_ALIAS``, service.shadow).

One store holds three tiny versions of loan-default: the champion, a challenger with the same
contract and another calibration (so its probabilities differ), and ``odd``, a version with
another contract. Each test's audit database is its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sqlalchemy import insert, select

from models.calibration import Calibrator
from monitoring.compare import compare
from service.audit import make_engine
from service.audit.schema import decisions, outcomes, shadow_scores
from tests.conftest import (
    CREDIT_DATA,
    ClientFactory,
    TrainedStore,
    applicant_payload,
    champion_source,
    forget_mlflow_uris,
    new_mlflow_db,
    register_source,
)

MODEL = "loan-default"


@pytest.fixture(scope="session")
def shadow_store(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_db: Path) -> TrainedStore:
    """Versions 1 (champion), 2 (challenger: another calibration) and 3 (odd: another contract)."""
    from tests.tiny_model import credit_model, fit_tiny_model, register_tiny_model

    def registered(fit: Any, alias: str) -> Any:
        """``fit``'s model registered in a store of its own (one tiny model per store)."""
        directory = tmp_path_factory.mktemp(f"shadow-{alias}")
        uri = new_mlflow_db(empty_mlflow_db, directory)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_URI", uri)
            patch.chdir(directory)
            registration = register_tiny_model(*fit())
            forget_mlflow_uris()
        return uri, registration

    model, rows = credit_model(CREDIT_DATA)
    uri, champion = registered(lambda: (model, rows), "champion")
    challenger = dataclasses.replace(model, calibrator=Calibrator("platt", a=0.8, b=0.4))
    challenger_uri, _ = registered(lambda: (challenger, rows), "challenger")
    # No schema: Age and Marital become inputs, so the contract differs.
    odd_uri, _ = registered(
        lambda: fit_tiny_model(pd.read_csv(CREDIT_DATA), "Status", "bad"), "odd"
    )
    directory = Path(uri.removeprefix("sqlite:///")).parent
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(directory)
        register_source(champion_source(challenger_uri), alias="challenger")
        register_source(champion_source(odd_uri), alias="odd")
        forget_mlflow_uris()
    return TrainedStore(uri=uri, directory=directory, result=champion)


@pytest.fixture
def use_shadow_store(
    shadow_store: TrainedStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TrainedStore]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shadow_store.uri)
    monkeypatch.chdir(shadow_store.directory)
    yield shadow_store


@pytest.fixture(scope="module")
def applicants() -> list[dict[str, Any]]:
    frame = pd.read_csv(CREDIT_DATA).iloc[:300]
    names = [c for c in frame.columns if c not in ("Status", "Age", "Marital")]
    return [applicant_payload(row, names) for _, row in frame.iterrows()]


def shadow_rows(tmp_path: Path) -> pd.DataFrame:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    with engine.connect() as connection:
        rows = connection.execute(select(shadow_scores)).mappings().all()
    engine.dispose()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in shadow_scores.columns])


def sample(client: Any, name: str, labels: dict[str, str] | None = None) -> float:
    value = client.app.state.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def test_single_and_batch_requests_store_the_challengers_scores(
    use_shadow_store: TrainedStore,
    make_client: ClientFactory,
    tmp_path: Path,
    applicants: list[dict[str, Any]],
) -> None:
    with make_client(shadow_alias="challenger") as client:
        singles = [client.post("/v1/score", json=a).json() for a in applicants[:3]]
        batch = client.post("/v1/score/batch", json={"applicants": applicants[3:40]}).json()
        challenger = client.app.state.shadow_store.current
        champion = client.app.state.model_store.current
        policy = client.app.state.policy
        assert sample(client, "loanrisk_shadow_scored_total") == 40
    answers = singles + batch["results"]
    rows = shadow_rows(tmp_path).set_index("request_id")
    assert sorted(rows.index) == sorted(a["request_id"] for a in answers)  # one per applicant
    assert set(rows["model_version"]) == {challenger.version} != {champion.version}
    assert set(rows["alias"]) == {"challenger"}
    records = [champion.records.python(a) for a in applicants[:40]]
    # Each applicant scored by the challenger directly, alone.
    direct = np.array([challenger.risk_model.score_records([r])[0] for r in records])
    stored = rows.loc[[a["request_id"] for a in answers], "probability_of_default"].to_numpy()
    np.testing.assert_allclose(stored, direct, rtol=0, atol=1e-7)  # float32 blocking, as batching
    assert list(rows.loc[[a["request_id"] for a in answers], "decision"]) == list(
        policy.apply(stored.tolist())[2]
    )
    # The champion decided: its probabilities are not the challenger's.
    champion_p = np.array([a["probability_of_default"] for a in answers])
    assert np.abs(champion_p - stored).max() > 1e-3


def test_answers_are_the_same_with_and_without_the_shadow(
    use_shadow_store: TrainedStore,
    make_client: ClientFactory,
    applicants: list[dict[str, Any]],
) -> None:
    def answers(**settings: Any) -> list[dict[str, Any]]:
        with make_client(**settings) as client:
            single = [client.post("/v1/score", json=a).json() for a in applicants[:3]]
            batch = client.post("/v1/score/batch", json={"applicants": applicants[:30]}).json()
        results = single + batch["results"]
        for result in results:
            del result["request_id"]
        return results

    assert answers(shadow_alias="challenger") == answers()


def test_a_missing_challenger_never_fails_a_request(
    use_shadow_store: TrainedStore,
    make_client: ClientFactory,
    tmp_path: Path,
    applicants: list[dict[str, Any]],
) -> None:
    with make_client(shadow_alias="nobody") as client:
        assert client.get("/ready").status_code == 200
        assert client.post("/v1/score", json=applicants[0]).status_code == 200
        answer = client.post("/v1/score/batch", json={"applicants": applicants[:5]})
        assert answer.status_code == 200
        assert sample(client, "loanrisk_shadow_failures_total", {"reason": "no_challenger"}) == 6
        assert sample(client, "loanrisk_shadow_reloads_total", {"outcome": "failed_no_alias"}) == 1
    assert shadow_rows(tmp_path).empty


def test_a_challenger_with_another_contract_is_refused_and_counted(
    use_shadow_store: TrainedStore,
    make_client: ClientFactory,
    tmp_path: Path,
    applicants: list[dict[str, Any]],
) -> None:
    with make_client(shadow_alias="odd") as client:
        assert client.app.state.shadow_store.current is None
        assert sample(client, "loanrisk_shadow_reloads_total", {"outcome": "refused_contract"}) == 1
        assert client.post("/v1/score", json=applicants[0]).status_code == 200
        assert sample(client, "loanrisk_shadow_failures_total", {"reason": "no_challenger"}) == 1
    assert shadow_rows(tmp_path).empty


def test_a_failing_challenger_never_fails_a_request(
    use_shadow_store: TrainedStore,
    make_client: ClientFactory,
    tmp_path: Path,
    applicants: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(records: Any) -> np.ndarray:
        raise RuntimeError("the challenger is broken")

    with make_client(shadow_alias="challenger") as client:
        challenger = client.app.state.shadow_store.current
        monkeypatch.setattr(challenger.risk_model, "score_records", broken)
        assert client.post("/v1/score", json=applicants[0]).status_code == 200
        answer = client.post("/v1/score/batch", json={"applicants": applicants[:5]})
        assert answer.status_code == 200
        assert sample(client, "loanrisk_shadow_failures_total", {"reason": "error"}) == 6
        assert sample(client, "loanrisk_shadow_scored_total") == 0
    assert shadow_rows(tmp_path).empty


def test_a_pass_over_its_budget_pauses_the_shadow(
    use_shadow_store: TrainedStore,
    make_client: ClientFactory,
    tmp_path: Path,
    applicants: list[dict[str, Any]],
) -> None:
    # A budget no pass can keep: the first pass is stored, then the shadow steps aside.
    with make_client(shadow_alias="challenger", shadow_budget_ms=1e-6) as client:
        for applicant in applicants[:3]:
            assert client.post("/v1/score", json=applicant).status_code == 200
        assert sample(client, "loanrisk_shadow_scored_total") == 1
        assert sample(client, "loanrisk_shadow_failures_total", {"reason": "paused"}) == 2
    assert len(shadow_rows(tmp_path)) == 1


def test_compare_reads_what_the_service_wrote(
    use_shadow_store: TrainedStore,
    make_client: ClientFactory,
    tmp_path: Path,
    applicants: list[dict[str, Any]],
) -> None:
    labels = (pd.read_csv(CREDIT_DATA).iloc[:300]["Status"] == "bad").to_numpy()
    with make_client(shadow_alias="challenger") as client:
        results = client.post("/v1/score/batch", json={"applicants": applicants}).json()["results"]
        champion = client.app.state.model_store.current.version
        challenger = client.app.state.shadow_store.current.version
    ids = [r["request_id"] for r in results]
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    with engine.begin() as connection:
        connection.execute(
            insert(outcomes),
            [
                {
                    "request_id": request_id,
                    "defaulted": bool(defaulted),
                    "observed_at": now,
                    "recorded_at": now,
                    "source": "import",
                    "corrections": 0,
                }
                for request_id, defaulted in zip(ids, labels, strict=True)
            ],
        )
        served = set(connection.execute(select(decisions.c.model_version)).scalars())
    comparison = compare(engine, MODEL, champion, challenger)
    stored = shadow_rows(tmp_path).set_index("request_id").loc[ids, "probability_of_default"]
    engine.dispose()
    assert served == {champion}
    assert comparison.both_scored == comparison.with_outcome == len(ids)
    assert comparison.test is not None
    champion_p = [r["probability_of_default"] for r in results]
    assert comparison.test.auc_first == pytest.approx(roc_auc_score(labels, champion_p))
    assert comparison.test.auc_second == pytest.approx(roc_auc_score(labels, stored))
