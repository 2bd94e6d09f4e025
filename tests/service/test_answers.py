"""What a lender gets back: score, band, decision, reasons, request id."""

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.contract import Schema
from service.decisioning import Policy
from service.schemas import ScoreResponse
from service.scoring import ANSWER_FIELDS
from tests.conftest import (
    CREDIT_DATA,
    README_APPLICANT,
    ClientFactory,
    TrainedStore,
    applicant_payload,
    champion_source,
    register_source,
)

CREDIT_SCHEMA = CREDIT_DATA.with_name("credit_data.schema.json")


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


@pytest.mark.slow
def test_protected_columns_are_not_inputs_are_refused_and_are_never_reasons(
    use_trained_store: TrainedStore, make_client: ClientFactory, credit_frame: pd.DataFrame
) -> None:
    """What protects an applicant: a column the data declares protected cannot change the score.

    The model trained on credit_data, which holds Age and Marital and declares them protected,
    must not take them as inputs; the service must refuse a request carrying them (so it neither
    scores nor records them); and no reason may name them, however extreme the inputs that go
    with them (their proxies) are.
    """
    protected = set(Schema.load(CREDIT_SCHEMA).protected)
    assert protected == {"Age", "Marital"} and protected <= set(credit_frame.columns)
    with make_client() as client:
        contract = client.get("/v1/model").json()["contract"]
        inputs = [f["name"] for f in contract["features"]]
        assert set(contract["protected"]) == protected
        assert not protected & set(inputs), "a protected column is a model input"

        sample = credit_frame.sample(20, random_state=3)
        applicants = [applicant_payload(row, inputs) for _, row in sample.iterrows()]
        for name in sorted(protected):
            value = applicant_payload(sample.iloc[0], [name])[name]
            single = client.post("/v1/score", json={**applicants[0], name: value})
            batch = client.post(
                "/v1/score/batch",
                json={"applicants": [applicants[1], {**applicants[0], name: value}]},
            )
            for response in (single, batch):
                assert response.status_code == 422, f"{name} was accepted: {response.text}"
                assert name in response.text

        # The numeric inputs that go most with age, at the edges of the training data.
        numeric = credit_frame[
            [n for n in inputs if pd.api.types.is_numeric_dtype(credit_frame[n])]
        ]
        proxies = numeric.corrwith(credit_frame["Age"]).abs().nlargest(2).index
        extremes = [
            {**applicant, proxy: edge.item()}
            for applicant in applicants
            for proxy in proxies
            for edge in (numeric[proxy].min(), numeric[proxy].max())
        ]
        response = client.post("/v1/score/batch", json={"applicants": extremes})
        assert response.status_code == 200, response.text
        named = {
            r["feature"] for result in response.json()["results"] for r in result["reason_codes"]
        }
        assert named and not named & protected
        assert named <= set(inputs)


def test_request_ids_are_unique_and_on_every_response(client: TestClient) -> None:
    ids = {client.post("/v1/score", json=README_APPLICANT).json()["request_id"] for _ in range(5)}
    assert len(ids) == 5
    assert "X-Request-ID" in client.get("/health").headers
    assert "X-Request-ID" in client.post("/v1/score", json={}).headers


def test_max_reasons_setting_caps_the_list(
    use_tiny_store: TrainedStore, make_client: ClientFactory
) -> None:
    with make_client(max_reasons=1) as one:
        assert len(one.post("/v1/score", json=README_APPLICANT).json()["reason_codes"]) <= 1
    with make_client(max_reasons=0) as none:
        assert none.post("/v1/score", json=README_APPLICANT).json()["reason_codes"] == []


def test_policy_settings_change_the_decision(
    use_tiny_store: TrainedStore, make_client: ClientFactory
) -> None:
    with make_client(approve_below=0.99, decline_at=0.995) as lenient:
        assert lenient.post("/v1/score", json=README_APPLICANT).json()["decision"] == "approve"
    with make_client(approve_below=0.001, decline_at=0.002) as strict:
        assert strict.post("/v1/score", json=README_APPLICANT).json()["decision"] == "decline"


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
