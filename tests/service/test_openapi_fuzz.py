"""Property-based tests generated from the service's own OpenAPI document (schemathesis)."""

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 40


def _one_row_per_id(case: schemathesis.Case) -> bool:
    """False for an outcomes body repeating a ``request_id``: refused (422) by a rule the schema
    cannot state (JSON Schema's ``uniqueItems`` compares whole rows), so never valid data."""
    rows = case.body.get("outcomes") if isinstance(case.body, dict) else None
    if case.path != "/v1/outcomes" or not isinstance(rows, list):
        return True
    ids = [row.get("request_id") for row in rows if isinstance(row, dict)]
    ids = [i for i in ids if isinstance(i, str)]
    return len(ids) == len(set(ids))


def test_no_server_errors_and_answers_match_the_schema(client: TestClient) -> None:
    """Every operation, fed generated valid and invalid requests: no 5xx, no off-schema answer."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {f"{op.method.upper()} {op.path}" for op in operations}
    assert {"POST /v1/score", "POST /v1/score/batch", "GET /v1/decisions/{request_id}"} <= paths
    for operation in operations:

        @given(case=operation.as_strategy().filter(_one_row_per_id))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate()

        check()
