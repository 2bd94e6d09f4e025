"""The policy thresholds that produced each decision: in single and batch answers, in their audit
records, and NULL in records from before revision 0003."""

import json
import sqlite3
from pathlib import Path

from alembic import command
from fastapi.testclient import TestClient

from service.audit import make_engine
from service.audit.migrations import alembic_config, schema_status, upgrade
from service.schemas import DecisionRecord, ScoreResponse
from tests.conftest import README_APPLICANT, ClientFactory, TrainedStore

POLICY = {
    "approve_below": 0.2,
    "decline_at": 0.4,
    "risk_bands": {"A": 0.1, "B": 0.3, "C": 1.0},
}


def test_single_and_batch_answers_and_their_records_carry_the_policy(
    use_tiny_store: TrainedStore, make_client: ClientFactory, tmp_path: Path
) -> None:
    with make_client(approve_below=0.2, decline_at=0.4, risk_bands="A:0.1,B:0.3,C:1.0") as client:
        single = client.post("/v1/score", json=README_APPLICANT).json()
        batch = client.post("/v1/score/batch", json={"applicants": [README_APPLICANT] * 3})
        answers = [single, *batch.json()["results"]]
        for answer in answers:
            assert answer["policy"] == POLICY
            ScoreResponse.model_validate(answer)
            record = client.get(f"/v1/decisions/{answer['request_id']}").json()
            DecisionRecord.model_validate(record)
            assert record["policy"] == POLICY
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        stored = [json.loads(p) for (p,) in connection.execute("SELECT policy FROM decisions")]
    assert stored == [POLICY] * 4


def test_the_default_policy_is_the_documented_one(client: TestClient) -> None:
    answer = client.post("/v1/score", json=README_APPLICANT).json()
    assert answer["policy"] == {
        "approve_below": 0.15,
        "decline_at": 0.35,
        "risk_bands": {"A": 0.05, "B": 0.1, "C": 0.2, "D": 0.35, "E": 1.0},
    }


def test_upgrading_a_0002_database_keeps_its_rows_with_nulls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0002")
    old = {
        "request_id": "before-0003",
        "created_at": "2025-01-02 03:04:05.000000",
        "model_name": "loan-default",
        "model_version": "3",
        "inputs": {"Income": 100.0},
        "probability_of_default": 0.25,
        "score": 640.0,
        "risk_band": "B",
        "decision": "review",
        "reason_codes": [],
    }
    engine.dispose()
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(decisions)")]
        assert "policy" not in columns and "api_key_name" not in columns
        connection.execute(
            f"INSERT INTO decisions ({', '.join(old)}) VALUES ({', '.join('?' * len(old))})",
            [json.dumps(v) if isinstance(v, dict | list) else v for v in old.values()],
        )
    assert schema_status(url).current == "0002"
    assert upgrade(url).state == "current"
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        row = connection.execute(
            "SELECT request_id, policy, api_key_name FROM decisions"
        ).fetchall()
    assert row == [("before-0003", None, None)]
