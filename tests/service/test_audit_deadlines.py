"""Deadlines of the audit store, readiness following it, and clients hanging up mid-body.

A writer process stopped with SIGSTOP stands for a database that stops answering: the service
side cannot tell them apart, and it needs no database server to freeze. The frozen PostgreSQL
itself is attacked by the chaos suite (tests/chaos).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from service.audit import AuditTrail, AuditUnavailable, make_engine, protocol
from service.audit.schema import postgresql_limits, server_limit_ms
from service.audit.writer import Committer
from service.metrics import ServiceMetrics
from service.middleware import RequestContextMiddleware
from tests.conftest import README_APPLICANT, ClientFactory, TrainedStore
from tests.service.test_audit_writer import audit_url, decision_rows

__all__ = ["audit_url"]  # the fixture, SQLite and PostgreSQL (integration)


def eventually(condition: Callable[[], bool], within_s: float = 30.0) -> bool:
    """Poll ``condition`` until it holds; a bound against hanging, not a timed assertion."""
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_writer_that_stops_answering_fails_the_commit_and_is_abandoned(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"

    async def run() -> tuple[str, int]:
        audit = AuditTrail(url, timeout_s=0.5, probe_interval_s=0, abandon_s=0.5)
        await audit.start()
        try:
            await audit.record(decision_rows(1, "before"))
            frozen = audit._process
            assert frozen is not None
            os.kill(frozen.pid, signal.SIGSTOP)
            try:
                with pytest.raises(AuditUnavailable, match="deadline") as failed:
                    await audit.record(decision_rows(3, "frozen"))
                # The trail kills it once nobody waits for its commit (bounded: no hang).
                await asyncio.wait_for(frozen.wait(), timeout=30)
            finally:
                with contextlib.suppress(ProcessLookupError):  # a survivor would run on
                    os.kill(frozen.pid, signal.SIGCONT)
            assert frozen.returncode == -signal.SIGKILL
            assert audit.unavailable_reason() is not None
            await audit.probe(60)  # its successor has started (slow on a busy machine)
            await audit.record(decision_rows(2, "after"))  # and commits
            assert audit._process is not frozen
            assert audit.unavailable_reason() is None
            return str(failed.value), audit.count()
        finally:
            await audit.stop()

    reason, count = asyncio.run(run())
    assert "500 ms" in reason
    assert count == 3  # before and after; nothing of the group whose request failed


def test_a_locked_sqlite_database_fails_the_commit_within_the_deadline(tmp_path: Path) -> None:
    """The database's own limit (busy_timeout) fails the statement before the service's
    deadline: the writer reports why and stays."""
    database = tmp_path / "audit.db"
    url = f"sqlite:///{database}"

    async def run() -> str:
        # SQLite gives up at 80 % of the deadline (8 s), 2 s before the service would: a margin
        # that holds on a loaded machine (the default 2 s deadline leaves 0.4 s).
        audit = AuditTrail(url, timeout_s=10.0, probe_interval_s=0)
        await audit.start()
        writer = audit._process
        blocker = sqlite3.connect(database, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
            with pytest.raises(AuditUnavailable) as failed:
                await audit.record(decision_rows(1, "locked"))
            blocker.execute("ROLLBACK")
            await audit.record(decision_rows(1, "unlocked"))
            assert audit._process is writer  # not abandoned: the database answered
            return str(failed.value)
        finally:
            blocker.close()
            await audit.stop()

    assert "OperationalError" in asyncio.run(run())


def test_server_side_limits_follow_the_deadline() -> None:
    assert server_limit_ms(2000) == 1600
    limits = postgresql_limits("postgresql+psycopg2://u@127.0.0.1:1/x", 2000)
    assert limits == {
        "options": "-c statement_timeout=1600 -c lock_timeout=1600",
        "connect_timeout": 2,
    }
    assert postgresql_limits("sqlite://", 2000) == {}
    assert postgresql_limits("postgresql://u@h/x", None) == {}  # migrations: no limit
    with_path = postgresql_limits("postgresql://u@h/x?options=-csearch_path%3Ds", 2000)
    assert with_path["options"] == "-csearch_path=s -c statement_timeout=1600 -c lock_timeout=1600"
    sqlite = make_engine("sqlite://", 2000)
    with sqlite.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1600


def test_a_commit_past_its_deadline_is_rolled_back(audit_url: str) -> None:
    from service.audit.migrations import upgrade

    upgrade(audit_url)
    committer = Committer(make_engine(audit_url, 2000))
    try:
        committer.deadline = time.time() - 1  # its requests were answered 503
        assert committer.commit(committer.rows.values(decision_rows(2, "late"))) == (
            "DeadlineExceeded"
        )
        committer.deadline = time.time() + 60
        assert committer.commit(committer.rows.values(decision_rows(1, "in-time"))) is None
    finally:
        committer.close()
    engine = make_engine(audit_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM decisions").scalar() == 1
    engine.dispose()


def test_postgresql_itself_refuses_a_commit_past_its_deadline(
    audit_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check inside COMMIT, for the commit sent before the deadline to a database that
    carries it out after (frozen): the writer's own check is made to pass here."""
    if not audit_url.startswith("postgresql"):
        pytest.skip("the commit guard is PostgreSQL's")
    from service.audit import writer
    from service.audit.migrations import upgrade

    upgrade(audit_url)
    committer = Committer(make_engine(audit_url, 2000))
    try:
        assert committer.commit([]) is None  # connected, guard in place
        monkeypatch.setattr(writer.time, "time", lambda: 0.0)  # the writer sees no deadline past
        committer.deadline = datetime.now(UTC).timestamp() - 1
        assert committer.commit(committer.rows.values(decision_rows(2, "late"))) == (
            "QueryCanceled"
        )
        committer.deadline = datetime.now(UTC).timestamp() + 60
        assert committer.commit(committer.rows.values(decision_rows(1, "in-time"))) is None
    finally:
        committer.close()
    engine = make_engine(audit_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM decisions").scalar() == 1
    engine.dispose()


def test_decision_reads_answer_503_when_the_store_fails(
    use_trained_store: TrainedStore, make_client: ClientFactory, tmp_path: Path
) -> None:
    with make_client() as client:
        request_id = client.post("/v1/score", json=README_APPLICANT).json()["request_id"]
        assert client.get(f"/v1/decisions/{request_id}").status_code == 200
        with sqlite3.connect(tmp_path / "audit.db") as connection:
            connection.execute("DROP TABLE decisions")
        response = client.get(f"/v1/decisions/{request_id}")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "audit_unavailable"


def test_ready_follows_the_audit_store_and_recovers_without_traffic(
    use_trained_store: TrainedStore, make_client: ClientFactory
) -> None:
    with make_client(audit_timeout_ms=500, audit_probe_interval_s=0.1) as client:
        assert client.get("/ready").status_code == 200
        audit = client.app.state.audit
        frozen = audit._process
        os.kill(frozen.pid, signal.SIGSTOP)
        try:
            scored = client.post("/v1/score", json=README_APPLICANT)
            assert scored.status_code == 503
            assert scored.json()["error"]["code"] == "audit_unavailable"
            ready = client.get("/ready")
            assert client.get("/health").status_code == 200  # the process, alone
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        assert ready.status_code == 503
        assert "deadline" in ready.json()["error"]["details"]["reason"]
        # No request from here on: the probe alone brings readiness back.
        assert eventually(lambda: client.get("/ready").status_code == 200)
        assert audit._process is frozen  # it carried on where it was
        # The commit it held was refused: its request had answered 503.
        assert audit.count() == 0


def test_ready_turns_503_and_back_without_traffic(
    use_trained_store: TrainedStore, make_client: ClientFactory, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    with make_client(
        audit_db_url=f"sqlite:///{store / 'audit.db'}", audit_probe_interval_s=0.1
    ) as client:
        assert client.get("/ready").status_code == 200
        # The database cannot be opened any more (its directory is gone): a new writer fails.
        store.rename(tmp_path / "gone")
        client.app.state.audit._process.kill()
        try:
            assert eventually(lambda: client.get("/ready").status_code == 503)
            reason = client.get("/ready").json()["error"]["details"]["reason"]
        finally:
            (tmp_path / "gone").rename(store)
        assert eventually(lambda: client.get("/ready").status_code == 200)
    assert "OperationalError" in reason or "exited" in reason


def test_a_client_hanging_up_mid_body_is_counted_as_499_without_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = ServiceMetrics(10)

    async def reads_the_body(scope: Scope, receive: Receive, send: Send) -> None:
        raise ClientDisconnect()  # what Request.body() raises on http.disconnect

    middleware = RequestContextMiddleware(reads_the_body, metrics=metrics, log_requests=True)
    scope = {"type": "http", "method": "POST", "path": "/v1/score", "headers": []}

    async def nothing() -> dict:
        return {"type": "http.disconnect"}

    async def ignore(_message: dict) -> None:
        return None

    with caplog.at_level("INFO"):
        asyncio.run(middleware(scope, nothing, ignore))  # does not raise
    statuses = [r.__dict__.get("status") for r in caplog.records if r.getMessage() == "request"]
    assert statuses == [499]
    assert all(r.levelno < logging.WARNING and r.exc_info is None for r in caplog.records)
    text = metrics.render(None).decode()
    assert 'status="499"' in text and 'status="500"' not in text


def test_the_writer_process_logs_json_lines(tmp_path: Path) -> None:
    """One log format: the writer's failures are JSON lines like the service's."""
    url = f"sqlite:///{tmp_path / 'missing' / 'audit.db'}"  # cannot be opened
    messages = protocol.message("open", (url, 2000)) + protocol.message("commit", [])
    completed = subprocess.run(
        [sys.executable, "-m", "service.audit.writer"],
        input=messages,
        capture_output=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert completed.returncode == 0
    assert completed.stdout.decode().strip() == "OperationalError"
    lines = completed.stderr.decode().splitlines()
    assert lines
    entries = [json.loads(line) for line in lines]  # every line a JSON object
    assert {entry["logger"] for entry in entries} == {"loanrisk.audit.writer"}
    assert entries[0]["level"] == "ERROR"
