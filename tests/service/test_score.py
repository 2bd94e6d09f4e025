import math

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.conftest import README_APPLICANT, TrainedStore, applicant_payload


def test_readme_applicant_gets_a_probability_and_the_model_version(
    client: TestClient, use_tiny_store: TrainedStore
) -> None:
    response = client.post("/v1/score", json=README_APPLICANT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0.0 <= body["probability_of_default"] <= 1.0
    assert body["model"] == {
        "name": "loan-default",
        "version": use_tiny_store.result.version,
        "run_id": use_tiny_store.result.run_id,
    }


def test_served_probability_equals_the_model_scoring_the_same_row(
    client: TestClient, credit_frame: pd.DataFrame
) -> None:
    store = client.app.state.model_store
    row = credit_frame.iloc[[5]]
    expected = store.current.risk_model.score_frame(row)[0]
    payload = applicant_payload(row.iloc[0], store.current.risk_model.contract.names)
    got = client.post("/v1/score", json=payload).json()["probability_of_default"]
    assert got == pytest.approx(float(expected), abs=1e-9)


def test_nullable_fields_may_be_null_or_omitted(client: TestClient) -> None:
    with_null = client.post("/v1/score", json={**README_APPLICANT, "Income": None})
    omitted = client.post(
        "/v1/score", json={k: v for k, v in README_APPLICANT.items() if k != "Income"}
    )
    assert with_null.status_code == omitted.status_code == 200
    assert with_null.json()["probability_of_default"] == omitted.json()["probability_of_default"]


def test_unseen_category_is_scored_not_refused(client: TestClient) -> None:
    response = client.post("/v1/score", json={**README_APPLICANT, "Home": "houseboat"})
    assert response.status_code == 200
    assert 0.0 <= response.json()["probability_of_default"] <= 1.0


@pytest.mark.parametrize(
    ("change", "field", "code_fragment"),
    [
        ({"Income": "lots"}, "Income", "number"),
        ({"Income": True}, "Income", "number"),
        ({"Amount": -5}, "Amount", "greater than"),
        ({"Debt": -1}, "Debt", "greater than or equal"),
        ({"Time": 0}, "Time", "greater than 0"),
        ({"Home": 3}, "Home", "string"),
        ({"Records": None}, "Records", "string"),
        ({"Records": ""}, "Records", "at least 1"),
        ({"Age": 40}, "Age", "Extra inputs"),
        ({"Marital": "single"}, "Marital", "Extra inputs"),
        ({"Colour": "red"}, "Colour", "Extra inputs"),
    ],
)
def test_invalid_fields_answer_422_naming_the_field(
    client: TestClient, change: dict, field: str, code_fragment: str
) -> None:
    response = client.post("/v1/score", json={**README_APPLICANT, **change})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith(f"{field}: ")
    assert code_fragment in error["message"]
    assert error["details"][0]["field"] == field


def test_missing_required_field_is_named(client: TestClient) -> None:
    payload = {k: v for k, v in README_APPLICANT.items() if k != "Seniority"}
    response = client.post("/v1/score", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "Seniority: Field required"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_nan_and_infinity_are_refused(client: TestClient, literal: str) -> None:
    body = (
        '{"Seniority": 9, "Home": "rent", "Time": 60, "Records": "no", "Job": "freelance", '
        f'"Expenses": 73, "Income": {literal}, "Assets": 0, "Debt": 0, "Amount": 800, '
        '"Price": 846}'
    )
    response = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "Income"


@pytest.mark.parametrize("body", ["", "not json", "[1, 2]", '"text"', "{"])
def test_malformed_bodies_answer_422_not_500(client: TestClient, body: str) -> None:
    response = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_oversized_body_answers_413(client: TestClient) -> None:
    payload = {**README_APPLICANT, "Home": "x" * 2_000_000}
    response = client.post("/v1/score", json=payload)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_probabilities_are_finite_over_many_real_rows(
    client: TestClient, credit_frame: pd.DataFrame
) -> None:
    names = client.app.state.model_store.current.risk_model.contract.names
    for _, row in credit_frame.sample(25, random_state=0).iterrows():
        payload = applicant_payload(row, names)
        value = client.post("/v1/score", json=payload).json()["probability_of_default"]
        assert math.isfinite(value) and 0 < value < 1
