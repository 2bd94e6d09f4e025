import json
import logging

import pytest
from fastapi.testclient import TestClient

from service.logs import JsonFormatter, request_id_var
from tests.conftest import README_APPLICANT


def test_log_lines_are_json_with_the_request_id() -> None:
    record = logging.LogRecord("loanrisk.x", logging.INFO, "f.py", 1, "hello %s", ("you",), None)
    record.route = "/v1/score"
    token = request_id_var.set("abc123")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello you"
    assert line["request_id"] == "abc123"
    assert line["route"] == "/v1/score"
    assert line["level"] == "INFO"


def test_no_applicant_data_is_logged_at_info(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    marker = {**README_APPLICANT, "Income": 123457, "Home": "zz-marker-home"}
    with caplog.at_level(logging.INFO):
        response = client.post("/v1/score", json=marker)
        client.post("/v1/score", json={**marker, "Debt": -77777})
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(r) for r in caplog.records)
    assert response.json()["request_id"] in text
    assert "123457" not in text and "zz-marker-home" not in text and "77777" not in text
