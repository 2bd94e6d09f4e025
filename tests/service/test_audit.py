import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from service.scoring import PART_ROWS
from tests.conftest import README_APPLICANT, ClientFactory, TrainedStore


def test_every_answer_has_a_committed_record_matching_it(client: TestClient) -> None:
    answers = [client.post("/v1/score", json=README_APPLICANT).json() for _ in range(3)]
    assert client.app.state.audit.count() == 3
    for answer in answers:
        record = client.get(f"/v1/decisions/{answer['request_id']}").json()
        assert record["inputs"] == README_APPLICANT
        assert record["model"] == answer["model"]
        for key in ("probability_of_default", "score", "risk_band", "decision", "reason_codes"):
            assert record[key] == answer[key], key
        assert record["batch_id"] is None


def test_refused_requests_leave_no_record(client: TestClient) -> None:
    client.post("/v1/score", json={**README_APPLICANT, "Debt": -1})
    client.post("/v1/score", content=b"{")
    assert client.app.state.audit.count() == 0


def test_unknown_decision_answers_404(client: TestClient) -> None:
    response = client.get("/v1/decisions/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_failed_audit_write_fails_the_request_with_503(
    use_tiny_store: TrainedStore, make_client: ClientFactory, tmp_path: Path
) -> None:
    with make_client() as client:
        assert client.post("/v1/score", json=README_APPLICANT).status_code == 200
        # Break the real database under the running service.
        with sqlite3.connect(tmp_path / "audit.db") as connection:
            connection.execute("DROP TABLE decisions")
        response = client.post("/v1/score", json=README_APPLICANT)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "audit_unavailable"
        batch = client.post("/v1/score/batch", json={"applicants": [README_APPLICANT] * 2})
        assert batch.status_code == 503
        # Large enough to be sent to the writer in parts.
        applicants = [README_APPLICANT] * (2 * PART_ROWS + 1)
        assert client.post("/v1/score/batch", json={"applicants": applicants}).status_code == 503
        metrics = client.get("/metrics").text
    assert "loanrisk_audit_failures_total 3.0" in metrics


def test_decisions_survive_a_restart(
    use_tiny_store: TrainedStore, make_client: ClientFactory
) -> None:
    with make_client() as first:
        request_id = first.post("/v1/score", json=README_APPLICANT).json()["request_id"]
    with make_client() as second:
        assert second.get(f"/v1/decisions/{request_id}").status_code == 200


def test_a_writer_process_that_dies_is_replaced(client: TestClient) -> None:
    audit = client.app.state.audit
    assert client.post("/v1/score", json=README_APPLICANT).status_code == 200
    first = audit._process
    first.kill()
    client.portal.call(first.wait)  # the service's own event loop sees it exit
    answer = client.post("/v1/score", json=README_APPLICANT)
    assert answer.status_code == 200, answer.text
    assert audit._process is not first
    assert audit.count() == 2
    assert client.get(f"/v1/decisions/{answer.json()['request_id']}").status_code == 200
