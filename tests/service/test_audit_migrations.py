"""The audit schema under Alembic: created once however many workers start at once, a database
from before versioning stamped, a newer schema refused."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from service.audit import AuditTrail, decisions, make_engine
from service.audit.migrations import (
    VERSION_TABLE,
    AuditSchemaError,
    schema_status,
    upgrade,
)
from service.audit.schema import metadata

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty audit database: a SQLite file, or a schema of its own (dropped afterwards) on
    the server named by LOANRISK_TEST_POSTGRES_URL, reached through the search path."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    raw = os.environ.get("LOANRISK_TEST_POSTGRES_URL")
    if not raw:
        pytest.skip("LOANRISK_TEST_POSTGRES_URL is not set")
    server = make_url(raw)
    schema = f"loanrisk_audit_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = server.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def a_decision(request_id: str) -> dict:
    return {
        "request_id": request_id,
        "created_at": datetime.now(UTC),
        "batch_id": None,
        "batch_index": None,
        "model_name": "loan-default",
        "model_version": "3",
        "run_id": "r" * 32,
        "inputs": {"Income": 100.0, "Home": "rent"},
        "probability_of_default": 0.25,
        "score": 640.0,
        "risk_band": "B",
        "decision": "approve",
        "reason_codes": [{"feature": "Income", "value": 100.0, "contribution": 0.5}],
        "policy": {"approve_below": 0.15, "decline_at": 0.35},
        "api_key_name": "los",
    }


# One worker: starts the audit trail (upgrading the schema), records one decision, stops.
WORKER = """
import asyncio, sys
from service.audit import AuditTrail
sys.path.insert(0, {tests!r})
from test_audit_migrations import a_decision

async def main() -> None:
    print("ready", flush=True)
    # A generous deadline: this is about start-up, and six processes share two cores.
    audit = AuditTrail(sys.stdin.readline().strip(), timeout_s=30.0)
    await audit.start()
    try:
        await audit.record([a_decision(sys.argv[1])])
    finally:
        await audit.stop()

asyncio.run(main())
"""


def test_workers_starting_at_once_on_an_empty_database_all_come_up(audit_url: str) -> None:
    script = WORKER.format(tests=str(Path(__file__).parent))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, f"worker-{index}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for index in range(6)
    ]
    # Each is given the URL once all have imported what they need, so they reach the database
    # together.
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline() == b"ready\n"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"{audit_url}\n".encode())
        worker.stdin.flush()
    outcomes = [worker.communicate(timeout=120) for worker in workers]
    for worker, (_, stderr) in zip(workers, outcomes, strict=True):
        assert worker.returncode == 0, stderr.decode()
    status = schema_status(audit_url)
    assert (status.current, status.state) == (status.head, "current")
    engine = make_engine(audit_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM decisions")).scalar_one() == 6
        versions = connection.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}"))
        assert versions.scalar_one() == 1
    engine.dispose()


def test_the_first_revision_makes_the_table_the_code_defines(audit_url: str) -> None:
    assert schema_status(audit_url).state == "empty"
    assert upgrade(audit_url).state == "current"
    engine = make_engine(audit_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []
    assert upgrade(audit_url).state == "current"  # again: nothing to do


def test_a_database_from_before_versioning_is_stamped_and_keeps_its_rows(audit_url: str) -> None:
    engine = make_engine(audit_url)
    metadata.create_all(engine)  # as the service made it before the schema was versioned
    with engine.begin() as connection:
        connection.execute(insert(decisions), [a_decision("before")])
    engine.dispose()
    status = schema_status(audit_url)
    assert (status.current, status.state) == (None, "unversioned")

    async def run() -> tuple[dict | None, int]:
        audit = AuditTrail(audit_url, timeout_s=30.0)
        await audit.start()
        try:
            await audit.record([a_decision("after")])
            return audit.get("before"), audit.count()
        finally:
            await audit.stop()

    before, count = asyncio.run(run())
    assert before is not None
    assert before["inputs"] == {"Income": 100.0, "Home": "rent"}
    assert count == 2
    status = schema_status(audit_url)
    assert status.state == "current"
    assert status.current == status.head


def test_a_schema_newer_than_the_code_is_refused_in_one_line(audit_url: str) -> None:
    upgrade(audit_url)
    engine = make_engine(audit_url)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    assert schema_status(audit_url).state == "ahead"
    with pytest.raises(AuditSchemaError) as refused:
        asyncio.run(AuditTrail(audit_url).start())
    message = str(refused.value)
    assert "revision 9999, newer than this code's" in message
    assert "\n" not in message


def test_a_database_that_cannot_be_reached_fails_start_up_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-directory' / 'audit.db'}"
    with pytest.raises(AuditSchemaError, match="could not be upgraded") as failed:
        upgrade(url)
    assert "\n" not in str(failed.value)
