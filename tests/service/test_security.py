"""API keys: 401 for a missing or unknown key, 403 naming the scope a known key lacks, keys given
as SHA-256 digests, rotation, and the asking key's name in every audit record."""

import hashlib
import json
import logging
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.config import SCOPES, Settings, parse_api_keys
from service.security import KeyRing
from tests.conftest import README_APPLICANT, ClientFactory, TrainedStore

PROTECTED = [
    ("POST", "/v1/score"),
    ("POST", "/v1/score/batch"),
    ("GET", "/v1/model"),
    ("GET", "/v1/decisions/abc"),
    ("POST", "/v1/outcomes"),
    ("POST", "/v1/admin/reload"),
]
# Each route and the scope it needs (None: any valid key).
ROUTE_SCOPES = [
    ("POST", "/v1/score", "score"),
    ("POST", "/v1/score/batch", "score"),
    ("GET", "/v1/decisions/abc", "decisions:read"),
    ("POST", "/v1/outcomes", "outcomes:write"),
    ("POST", "/v1/admin/reload", "admin"),
]


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# One key per scope, given as digests; "los-old" and "los-new" are a rotation in progress.
SECRETS = {
    "los-old": ("old-scoring-secret", ["score"]),
    "los-new": ("new-scoring-secret", ["score"]),
    "auditor": ("auditor-secret", ["decisions:read"]),
    "feeder": ("feeder-secret", ["outcomes:write"]),
    "ops": ("ops-secret", ["admin"]),
}
SCOPED_KEYS = json.dumps(
    [
        {"name": name, "sha256": sha256(secret), "scopes": scopes}
        for name, (secret, scopes) in SECRETS.items()
    ]
)
SECRET_OF_SCOPE = {scopes[0]: secret for secret, scopes in SECRETS.values()}


def body_for(path: str) -> dict:
    if path == "/v1/score/batch":
        return {"applicants": [README_APPLICANT]}
    if path == "/v1/outcomes":
        return {
            "outcomes": [{"request_id": "abc", "defaulted": False, "observed_at": "2025-06-30"}]
        }
    return README_APPLICANT


@pytest.fixture
def keyed(use_tiny_store: TrainedStore, make_client: ClientFactory):
    with make_client(api_keys="alpha-key,beta-key") as client:
        yield client


@pytest.fixture
def scoped(use_tiny_store: TrainedStore, make_client: ClientFactory):
    with make_client(api_keys=SCOPED_KEYS) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}])
def test_protected_routes_need_a_valid_key(
    keyed: TestClient, method: str, path: str, headers: dict
) -> None:
    response = keyed.request(method, path, json=body_for(path), headers=headers)
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


@pytest.mark.parametrize(("method", "path", "scope"), ROUTE_SCOPES)
def test_a_key_without_the_routes_scope_is_forbidden_and_told_which(
    scoped: TestClient, method: str, path: str, scope: str
) -> None:
    for other_scope, secret in SECRET_OF_SCOPE.items():
        if other_scope == scope:
            continue
        response = scoped.request(method, path, json=body_for(path), headers={"X-API-Key": secret})
        assert response.status_code == 403, (path, other_scope)
        error = response.json()["error"]
        assert error["code"] == "forbidden"
        assert error["details"] == {"missing_scope": scope}
        assert repr(scope) in error["message"]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTE_SCOPES)
def test_a_key_with_the_routes_scope_gets_through(
    scoped: TestClient, method: str, path: str, scope: str
) -> None:
    headers = {"X-API-Key": SECRET_OF_SCOPE[scope]}
    response = scoped.request(method, path, json=body_for(path), headers=headers)
    # Past the key check: the decision "abc" does not exist, the outcome's decision neither.
    assert response.status_code not in (401, 403), response.text
    assert response.status_code == {"/v1/decisions/abc": 404}.get(path, 200), response.text


@pytest.mark.parametrize("secret", [secret for secret, _ in SECRETS.values()])
def test_the_model_route_takes_any_valid_key(scoped: TestClient, secret: str) -> None:
    assert scoped.get("/v1/model", headers={"X-API-Key": secret}).status_code == 200
    assert scoped.get("/v1/model", headers={"X-API-Key": "nope"}).status_code == 401


def test_a_digest_is_not_itself_a_key(scoped: TestClient) -> None:
    digest = sha256("old-scoring-secret")
    response = scoped.post("/v1/score", json=README_APPLICANT, headers={"X-API-Key": digest})
    assert response.status_code == 401


def test_old_and_new_keys_both_work_during_a_rotation(scoped: TestClient) -> None:
    for secret in ("old-scoring-secret", "new-scoring-secret"):
        response = scoped.post("/v1/score", json=README_APPLICANT, headers={"X-API-Key": secret})
        assert response.status_code == 200


def test_the_asking_keys_name_is_in_every_audit_record(scoped: TestClient, tmp_path: Path) -> None:
    single = scoped.post(
        "/v1/score", json=README_APPLICANT, headers={"X-API-Key": "old-scoring-secret"}
    ).json()
    batch = scoped.post(
        "/v1/score/batch",
        json={"applicants": [README_APPLICANT] * 3},
        headers={"X-API-Key": "new-scoring-secret"},
    ).json()["results"]
    expected = {single["request_id"]: "los-old"}
    expected.update({answer["request_id"]: "los-new" for answer in batch})
    for request_id, name in expected.items():
        record = scoped.get(f"/v1/decisions/{request_id}", headers={"X-API-Key": "auditor-secret"})
        assert record.status_code == 200
        assert record.json()["api_key_name"] == name
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        stored = dict(connection.execute("SELECT request_id, api_key_name FROM decisions"))
    assert stored == expected


def test_an_open_service_records_no_key_name(client: TestClient) -> None:
    request_id = client.post("/v1/score", json=README_APPLICANT).json()["request_id"]
    assert client.get(f"/v1/decisions/{request_id}").json()["api_key_name"] is None


def test_comma_separated_secrets_are_keys_of_every_scope_named_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = Settings(api_keys="first, second").api_key_list
    assert [(key.name, key.key, key.scopes) for key in keys] == [
        ("key-1", "first", SCOPES),
        ("key-2", "second", SCOPES),
    ]
    with caplog.at_level(logging.WARNING):
        ring = KeyRing(keys)
    assert any("plaintext" in record.getMessage() for record in caplog.records)
    assert ring.resolve("second") is ring.keys[1]
    assert ring.resolve("third") is None
    assert ring.resolve("") is None
    assert ring.resolve(None) is None


def test_keys_given_as_digests_log_no_plaintext_warning(caplog: pytest.LogCaptureFixture) -> None:
    upper = json.dumps([{"name": "los", "sha256": sha256("s").upper(), "scopes": ["score"]}])
    with caplog.at_level(logging.WARNING):
        ring = KeyRing(parse_api_keys(upper))
    assert not any("plaintext" in record.getMessage() for record in caplog.records)
    found = ring.resolve("s")  # a digest in upper-case hex matches too
    assert found is not None
    assert (found.name, found.scopes) == ("los", frozenset({"score"}))


@pytest.mark.parametrize(
    "value",
    [
        "[{]",  # not JSON
        '[{"name": "x", "scopes": ["score"]}]',  # no secret
        '[{"name": "x", "key": "a", "sha256": "' + "0" * 64 + '"}]',  # two secrets
        '[{"name": "x", "sha256": "abc"}]',  # not a digest
        '[{"name": "x", "key": "a", "scopes": ["everything"]}]',  # unknown scope
        '[{"name": "x", "key": "a"}, {"name": "x", "key": "b"}]',  # a name twice
        '[{"name": "x", "key": "a", "colour": "red"}]',  # an unknown field
    ],
)
def test_malformed_key_settings_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(api_keys=value)


def test_the_same_secret_under_two_names_is_refused() -> None:
    keys = parse_api_keys(
        json.dumps([{"name": "a", "key": "s"}, {"name": "b", "sha256": sha256("s")}])
    )
    with pytest.raises(ValueError, match="same secret"):
        KeyRing(keys)


def test_a_json_key_without_scopes_has_them_all() -> None:
    (key,) = parse_api_keys(json.dumps([{"name": "all", "sha256": sha256("s")}]))
    assert key.scopes == SCOPES
