"""The audit writer on SQLite and on a real PostgreSQL: multi-row inserts, JSON, timestamps."""

import asyncio
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvloop
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.audit import PIPE_BYTES, AuditTrail, RowWriter, _write_all, make_engine, metadata
from service.audit_writer import Committer


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh audit database: a SQLite file, or a database on the server named by
    LOANRISK_TEST_POSTGRES_URL (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    raw = os.environ.get("LOANRISK_TEST_POSTGRES_URL")
    if not raw:
        pytest.skip("LOANRISK_TEST_POSTGRES_URL is not set")
    server = make_url(raw)
    name = f"loanrisk_audit_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def decision_rows(count: int, batch_id: str) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "request_id": uuid.uuid4().hex,
            "created_at": now,
            "batch_id": batch_id,
            "batch_index": index,
            "model_name": "loan-default",
            "model_version": "3",
            "run_id": "r" * 32,
            "inputs": {"Income": 100.0 + index, "Home": "rent", "Debt": None},
            "probability_of_default": index / count,
            "score": 600.0 - index / 10,
            "risk_band": "C",
            "decision": "review",
            "reason_codes": [{"feature": "Income", "value": 100.0, "contribution": 0.5}],
        }
        for index in range(count)
    ]


async def record_concurrently(url: str, groups: list[list[dict]]) -> AuditTrail:
    audit = AuditTrail(url)
    await audit.start()
    try:
        await asyncio.gather(*(audit.record(rows) for rows in groups))
    finally:
        await audit.stop()
    return audit


def test_groups_larger_than_one_statement_are_committed_whole(audit_url: str) -> None:
    # 2,300 rows in one group: one message to the writer process, three INSERT statements of at
    # most 1,000 rows, one transaction.
    groups = [decision_rows(2000, "big"), *(decision_rows(1, f"single-{i}") for i in range(300))]
    audit = asyncio.run(record_concurrently(audit_url, groups))
    assert audit.count() == 2300
    first, last = groups[0][0], groups[0][-1]
    for row in (first, last, groups[-1][0]):
        stored = audit.get(row["request_id"])
        assert stored is not None
        assert stored["inputs"] == row["inputs"]
        assert stored["reason_codes"] == row["reason_codes"]
        created = stored["created_at"]
        # SQLite keeps no time zone: the service writes UTC, so a naive value is UTC.
        assert (created if created.tzinfo else created.replace(tzinfo=UTC)) == row["created_at"]
        assert stored["batch_index"] == row["batch_index"]
    audit.engine.dispose()


def test_sqlite_checkpoints_run_beside_the_commits(
    tmp_path: Path,
) -> None:
    database = tmp_path / "audit.db"
    engine = make_engine(f"sqlite:///{database}")
    metadata.create_all(engine)
    committer = Committer(engine)
    writer = RowWriter(engine)
    for group in range(5):
        rows = writer.values(decision_rows(300, f"batch-{group}"))
        assert committer.commit(rows) is None
        assert committer.connection is not None
        cursor = committer.connection.cursor()
        # Commits never checkpoint themselves: the checkpointer thread does.
        assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        cursor.close()
    checkpointer = committer.checkpointer
    assert checkpointer is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        result = checkpointer.last_result
        if result is not None and result[1] > 0 and result[1] == result[2]:
            break  # every frame of the log copied into the database
        time.sleep(0.01)
    else:
        pytest.fail(f"the log was not checkpointed: {checkpointer.last_result}")
    committer.close()
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM decisions").fetchone() == (1500,)


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_messages_larger_than_the_pipe_arrive_whole(run: Callable[..., object]) -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    message = os.urandom(3 * PIPE_BYTES + 12345)
    received = bytearray()

    def drain() -> None:
        with os.fdopen(read_end, "rb") as source:
            while chunk := source.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()

    async def send() -> None:
        await _write_all(write_end, message)
        os.close(write_end)

    run(send())
    reader.join(timeout=10)
    assert bytes(received) == message


def test_the_trail_records_under_uvloop(tmp_path: Path) -> None:
    # The server runs on uvloop, whose subprocess pipes differ from asyncio's.
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    groups = [decision_rows(1500, "big"), decision_rows(3, "small")]

    async def record() -> AuditTrail:
        return await record_concurrently(url, groups)

    audit = uvloop.run(record())
    assert audit.count() == 1503
    audit.engine.dispose()
