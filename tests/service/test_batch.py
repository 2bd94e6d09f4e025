import itertools

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.schemas import BatchResponse
from service.scoring import LAST_PART_ROWS, PART_ROWS, _parts
from tests.conftest import README_APPLICANT, ClientFactory, TrainedStore, applicant_payload


def payloads(client: TestClient, frame: pd.DataFrame, n: int) -> list[dict]:
    names = client.app.state.model_store.current.risk_model.contract.names
    return [applicant_payload(row, names) for _, row in frame.head(n).iterrows()]


def test_batch_answers_in_input_order_equal_single_answers(
    client: TestClient, credit_frame: pd.DataFrame
) -> None:
    applicants = payloads(client, credit_frame, 30)
    batch = client.post("/v1/score/batch", json={"applicants": applicants})
    assert batch.status_code == 200, batch.text
    BatchResponse.model_validate(batch.json())  # the documented response model
    results = batch.json()["results"]
    assert len(results) == 30
    for applicant, result in zip(applicants[:8], results, strict=False):
        single = client.post("/v1/score", json=applicant).json()
        # float32 products may round differently for different batch sizes
        assert result["probability_of_default"] == pytest.approx(
            single["probability_of_default"], abs=1e-6
        )
        assert result["score"] == pytest.approx(single["score"], abs=0.01)
        assert (result["risk_band"], result["decision"]) == (
            single["risk_band"],
            single["decision"],
        )
        assert [r["feature"] for r in result["reason_codes"]] == [
            r["feature"] for r in single["reason_codes"]
        ]
    assert len({r["request_id"] for r in results}) == 30


def test_each_batch_decision_is_audited_with_the_batch_id(
    client: TestClient, credit_frame: pd.DataFrame
) -> None:
    applicants = payloads(client, credit_frame, 5)
    response = client.post("/v1/score/batch", json={"applicants": applicants})
    batch_id = response.headers["X-Request-ID"]
    for index, result in enumerate(response.json()["results"]):
        record = client.get(f"/v1/decisions/{result['request_id']}").json()
        assert record["batch_id"] == batch_id
        assert record["batch_index"] == index
        assert record["inputs"] == applicants[index]
        for key in ("probability_of_default", "score", "risk_band", "decision", "reason_codes"):
            assert record[key] == result[key]


def test_a_batch_sent_to_the_audit_in_parts_is_recorded_whole(
    make_client: ClientFactory, use_tiny_store: TrainedStore, credit_frame: pd.DataFrame
) -> None:
    with make_client(batch_max=3 * PART_ROWS) as client:
        applicants = payloads(client, credit_frame, 2 * PART_ROWS + 7)
        response = client.post("/v1/score/batch", json={"applicants": applicants})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert client.app.state.audit.count() == len(applicants)
        edges = {index for start, stop in _parts(len(applicants)) for index in (start, stop - 1)}
        for index in sorted(edges):
            record = client.get(f"/v1/decisions/{results[index]['request_id']}").json()
            assert record["batch_index"] == index
            assert record["inputs"] == applicants[index]
            assert record["reason_codes"] == results[index]["reason_codes"]


def test_parts_cover_a_batch_in_order_evenly_and_end_short() -> None:
    for count in range(PART_ROWS + 1, 5001):
        parts = _parts(count)
        assert parts[0][0] == 0 and parts[-1][1] == count
        assert all(stop == next_start for (_, stop), (next_start, _) in itertools.pairwise(parts))
        sizes = [stop - start for start, stop in parts]
        assert sizes[-1] == LAST_PART_ROWS
        # even: no part of a handful of rows (351 once gave 250, 1 and 100)
        assert all(LAST_PART_ROWS <= size <= PART_ROWS for size in sizes), (count, sizes)
        assert max(sizes[:-1]) - min(sizes[:-1]) <= 1


def test_one_bad_item_answers_422_naming_index_and_field(client: TestClient) -> None:
    applicants = [README_APPLICANT, README_APPLICANT, {**README_APPLICANT, "Debt": -1}]
    response = client.post("/v1/score/batch", json={"applicants": applicants})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"][0]["field"] == "applicants[2].Debt"
    assert error["message"].startswith("applicants[2].Debt: ")
    audit = client.app.state.audit
    assert audit.count() == 0


def test_over_the_cap_is_refused_with_a_clear_message(
    use_tiny_store: TrainedStore, make_client: ClientFactory
) -> None:
    with make_client(batch_max=3) as small:
        response = small.post("/v1/score/batch", json={"applicants": [README_APPLICANT] * 4})
        assert response.status_code == 422
        assert "at most 3" in response.json()["error"]["message"]
        assert (
            small.post("/v1/score/batch", json={"applicants": [README_APPLICANT] * 3}).status_code
            == 200
        )


@pytest.mark.parametrize("body", [{"applicants": []}, {}, {"applicants": "x"}, {"rows": []}])
def test_malformed_batches_answer_422(client: TestClient, body: dict) -> None:
    assert client.post("/v1/score/batch", json=body).status_code == 422
