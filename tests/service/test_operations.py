from fastapi.testclient import TestClient

from tests.conftest import README_APPLICANT, TrainedStore


def test_health_and_ready_with_a_champion(client: TestClient, use_tiny_store: TrainedStore) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["model"]["version"] == use_tiny_store.result.version


def test_without_a_champion_the_service_starts_but_is_not_ready(empty_client: TestClient) -> None:
    assert empty_client.get("/health").status_code == 200
    ready = empty_client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "not_ready"
    score = empty_client.post("/v1/score", json=README_APPLICANT)
    assert score.status_code == 503
    error = score.json()["error"]
    assert error["code"] == "model_unavailable"
    assert "loan-default@champion" in error["message"]


def test_model_endpoint_describes_version_metrics_and_contract(
    client: TestClient, use_tiny_store: TrainedStore
) -> None:
    body = client.get("/v1/model").json()
    assert body["alias"] == "champion"
    assert body["version"] == use_tiny_store.result.version
    assert 0.5 < body["metrics"]["test_roc_auc"] <= 1.0
    names = [f["name"] for f in body["contract"]["features"]]
    assert "Age" not in names and "Income" in names
    assert body["contract"]["protected"] == ["Age", "Marital"]


def test_openapi_documents_the_applicant_with_a_worked_example(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    applicant = schema["components"]["schemas"]["Applicant"]
    assert applicant["additionalProperties"] is False
    assert set(applicant["required"]) >= {"Seniority", "Time", "Amount"}
    assert "Income" not in applicant["required"]
    assert applicant["properties"]["Amount"]["exclusiveMinimum"] == 0
    example = applicant["examples"][0]
    assert set(example) == set(applicant["properties"])
    body = schema["paths"]["/v1/score"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Applicant"
    assert client.post("/v1/score", json=example).status_code == 200
    assert client.get("/docs").status_code == 200


def test_unknown_routes_use_the_error_shape(client: TestClient) -> None:
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
