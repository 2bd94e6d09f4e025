"""POST /v1/outcomes: recorded, unchanged, corrected with history, unknown ids, 422 by field."""

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.audit.schema import outcome_corrections, outcomes
from tests.conftest import README_APPLICANT


def test_outcomes_are_idempotent_corrections_kept_unknown_reported(client: TestClient) -> None:
    first = client.post("/v1/score", json=README_APPLICANT).json()["request_id"]
    batch = client.post("/v1/score/batch", json={"applicants": [README_APPLICANT] * 2}).json()
    second = batch["results"][1]["request_id"]  # one applicant of a batch: its own id
    body = {
        "outcomes": [
            {"request_id": first, "defaulted": False, "observed_at": "2025-06-30"},
            {"request_id": second, "defaulted": True, "observed_at": "2025-06-30T12:00:00Z"},
            {"request_id": "no-such-decision", "defaulted": True, "observed_at": "2025-06-30"},
        ]
    }
    answer = client.post("/v1/outcomes", json=body)
    assert answer.status_code == 200
    assert answer.json() == {
        "recorded": 2,
        "unchanged": 0,
        "corrected": 0,
        "unknown": ["no-such-decision"],
    }
    again = client.post("/v1/outcomes", json=body).json()
    assert (again["recorded"], again["unchanged"], again["corrected"]) == (0, 2, 0)
    changed = {
        "outcomes": [
            {"request_id": first, "defaulted": True, "observed_at": "2025-07-31T00:00:00+02:00"}
        ]
    }
    assert client.post("/v1/outcomes", json=changed).json()["corrected"] == 1
    engine = client.app.state.audit.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        row = connection.execute(select(outcomes).where(outcomes.c.request_id == first)).one()
        history = connection.execute(select(outcome_corrections)).all()
    assert (row.defaulted, row.corrections, row.source) == (True, 1, "api")
    assert len(history) == 1
    assert (history[0].previous_defaulted, history[0].defaulted) == (False, True)
    assert history[0].observed_at.hour == 22  # the offset's instant, in UTC


def test_an_invalid_outcome_names_its_field(client: TestClient) -> None:
    bad = {
        "outcomes": [
            {"request_id": "x", "defaulted": True, "observed_at": "2025-01-01"},
            {"request_id": "y", "defaulted": "maybe", "observed_at": "2025-01-01"},
        ]
    }
    answer = client.post("/v1/outcomes", json=bad)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"].startswith("outcomes[1].defaulted")
    assert client.post("/v1/outcomes", json={"outcomes": []}).status_code == 422


def test_outcomes_need_an_api_key_when_keys_are_set(use_trained_store, make_client) -> None:  # type: ignore[no-untyped-def]
    with make_client(api_keys="secret") as keyed:
        body = {"outcomes": [{"request_id": "x", "defaulted": True, "observed_at": "2025-01-01"}]}
        assert keyed.post("/v1/outcomes", json=body).status_code == 401
        answer = keyed.post("/v1/outcomes", json=body, headers={"X-API-Key": "secret"})
        assert answer.json()["unknown"] == ["x"]


def test_a_repeated_key_in_an_outcome_is_refused_naming_it(client: TestClient) -> None:
    """``"defaulted": true, "defaulted": false``: a parser keeps the last, so the first was never
    read. Refused as the score routes refuse it, naming the row and the key; nothing stored."""
    request_id = client.post("/v1/score", json=README_APPLICANT).json()["request_id"]
    row = f'{{"request_id": "{request_id}", "defaulted": true, "defaulted": false, '
    body = '{"outcomes": [' + row + '"observed_at": "2025-06-30T12:00:00Z"}]}'
    answer = client.post("/v1/outcomes", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["details"][0]["field"] == "outcomes[0].defaulted"
    assert error["message"].startswith("outcomes[0].defaulted: the key 'defaulted' appears")
    engine = client.app.state.audit.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        assert connection.execute(select(outcomes)).all() == []


def test_an_id_twice_in_one_body_is_refused_naming_both_rows(client: TestClient) -> None:
    first = client.post("/v1/score", json=README_APPLICANT).json()["request_id"]
    other = client.post("/v1/score", json=README_APPLICANT).json()["request_id"]
    rows = [
        {"request_id": first, "defaulted": False, "observed_at": "2025-06-30"},
        {"request_id": other, "defaulted": False, "observed_at": "2025-06-30"},
        {"request_id": other, "defaulted": False, "observed_at": "2025-06-30"},
        {"request_id": first, "defaulted": True, "observed_at": "2025-06-30"},
    ]
    answer = client.post("/v1/outcomes", json={"outcomes": rows})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["message"] == "outcomes[2].request_id: repeats outcomes[1] (and 1 more)"
    assert [(d["field"], d["message"]) for d in error["details"]] == [
        ("outcomes[2].request_id", "repeats outcomes[1]"),
        ("outcomes[3].request_id", "repeats outcomes[0]"),
    ]
    engine = client.app.state.audit.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        assert connection.execute(select(outcomes)).all() == []
