import logging

import pytest
from fastapi.testclient import TestClient

from tests.conftest import README_APPLICANT, ClientFactory, TrainedStore

PROTECTED = [
    ("POST", "/v1/score"),
    ("POST", "/v1/score/batch"),
    ("GET", "/v1/model"),
    ("GET", "/v1/decisions/abc"),
    ("POST", "/v1/admin/reload"),
]


@pytest.fixture
def keyed(use_tiny_store: TrainedStore, make_client: ClientFactory):
    with make_client(api_keys="alpha-key,beta-key") as client:
        yield client


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
def test_protected_routes_need_a_valid_key(
    keyed: TestClient, method: str, path: str, headers: dict
) -> None:
    response = keyed.request(method, path, json=README_APPLICANT, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_authentication_is_checked_before_the_body(keyed: TestClient) -> None:
    assert keyed.post("/v1/score", content=b"garbage").status_code == 401


@pytest.mark.parametrize("key", ["alpha-key", "beta-key"])
def test_any_configured_key_is_accepted(keyed: TestClient, key: str) -> None:
    response = keyed.post("/v1/score", json=README_APPLICANT, headers={"X-API-Key": key})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/docs", "/openapi.json"])
def test_operational_routes_stay_open(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_running_open_is_announced_loudly(
    use_tiny_store: TrainedStore, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), make_client(api_keys="") as client:
        assert client.post("/v1/score", json=README_APPLICANT).status_code == 200
    assert any("AUTHENTICATION DISABLED" in r.getMessage() for r in caplog.records)
