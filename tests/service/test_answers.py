"""What a lender gets back: score, band, decision, reasons, request id."""

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.decisioning import Policy
from service.schemas import ScoreResponse
from service.scoring import ANSWER_FIELDS
from tests.conftest import (
    README_APPLICANT,
    ClientFactory,
    TrainedStore,
    applicant_payload,
    champion_source,
    register_source,
)


def test_answer_carries_score_band_decision_and_reasons(client: TestClient) -> None:
    response = client.post("/v1/score", json=README_APPLICANT)
    body = response.json()
    ScoreResponse.model_validate(body)  # the documented response model
    policy: Policy = client.app.state.policy
    p = np.array([body["probability_of_default"]])
    assert body["score"] == pytest.approx(policy.scores(p)[0])
    assert body["risk_band"] == policy.risk_bands(p)[0]
    assert body["decision"] == policy.decisions(p)[0]
    assert response.headers["X-Request-ID"] == body["request_id"]
    assert len(body["request_id"]) == 32
    reasons = body["reason_codes"]
    assert 0 < len(reasons) <= 4
    contributions = [r["contribution"] for r in reasons]
    assert contributions == sorted(contributions, reverse=True) and min(contributions) > 0
    for reason in reasons:
        assert reason["feature"] in README_APPLICANT
        assert reason["value"] == README_APPLICANT[reason["feature"]]
        assert reason["message"]


def test_protected_columns_never_appear_in_reasons(
    client: TestClient, credit_frame: pd.DataFrame
) -> None:
    names = client.app.state.model_store.current.risk_model.contract.names
    for _, row in credit_frame.sample(40, random_state=3).iterrows():
        reasons = client.post("/v1/score", json=applicant_payload(row, names)).json()[
            "reason_codes"
        ]
        assert not {"Age", "Marital"} & {r["feature"] for r in reasons}


def test_request_ids_are_unique_and_on_every_response(client: TestClient) -> None:
    ids = {client.post("/v1/score", json=README_APPLICANT).json()["request_id"] for _ in range(5)}
    assert len(ids) == 5
    assert "X-Request-ID" in client.get("/health").headers
    assert "X-Request-ID" in client.post("/v1/score", json={}).headers


def test_max_reasons_setting_caps_the_list(
    use_trained_store: TrainedStore, make_client: ClientFactory
) -> None:
    with make_client(max_reasons=1) as one:
        assert len(one.post("/v1/score", json=README_APPLICANT).json()["reason_codes"]) <= 1
    with make_client(max_reasons=0) as none:
        assert none.post("/v1/score", json=README_APPLICANT).json()["reason_codes"] == []


def test_policy_settings_change_the_decision(
    use_trained_store: TrainedStore, make_client: ClientFactory
) -> None:
    with make_client(approve_below=0.99, decline_at=0.995) as lenient:
        assert lenient.post("/v1/score", json=README_APPLICANT).json()["decision"] == "approve"
    with make_client(approve_below=0.001, decline_at=0.002) as strict:
        assert strict.post("/v1/score", json=README_APPLICANT).json()["decision"] == "decline"


@pytest.mark.slow
def test_high_debt_to_income_is_named_as_the_main_reason(
    dti_store: TrainedStore, mlflow_store: str, make_client: ClientFactory
) -> None:
    register_source(champion_source(dti_store.uri))
    typical = {"income": 3000, "years_employed": 10, "purpose": "car"}
    with make_client() as client:
        risky = client.post("/v1/score", json={**typical, "debt_to_income": 0.78}).json()
        safe = client.post("/v1/score", json={**typical, "debt_to_income": 0.05}).json()
    assert risky["probability_of_default"] > safe["probability_of_default"] + 0.2
    top = risky["reason_codes"][0]
    assert top["feature"] == "debt_to_income"
    assert "higher than typical" in top["message"]
    assert "debt_to_income" not in {r["feature"] for r in safe["reason_codes"]}


def test_the_answer_writes_the_documented_fields_in_order() -> None:
    assert [*ANSWER_FIELDS, "model"] == list(ScoreResponse.model_fields)
