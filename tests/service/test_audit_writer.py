"""The audit writer on SQLite and on a real PostgreSQL: multi-row inserts, JSON, timestamps."""

import asyncio
import contextlib
import io
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvloop
from pydantic_core import to_json
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.audit import (
    AuditTrail,
    AuditUnavailable,
    DecisionColumns,
    JSONTextColumn,
    make_engine,
    protocol,
)
from service.audit.rows import RowWriter
from service.audit.schema import metadata
from service.audit.trail import PIPE_BYTES
from service.audit.writer import Committer

# These tests are about what is written, not about deadlines (test_audit_deadlines.py): a
# writer process restarted on a loaded machine can take seconds to start.
TRAIL_DEADLINE_S = 30.0


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
            "policy": {"approve_below": 0.15, "decline_at": 0.35},
            "api_key_name": "los",
        }
        for index in range(count)
    ]


def as_columns(rows: list[dict]) -> DecisionColumns:
    """The rows column by column, as a batch gives them: shared values once, reason codes as
    JSON text."""
    shared = ("created_at", "batch_id", "model_name", "model_version", "run_id")
    columns = {name: [row[name] for row in rows] for name in rows[0] if name not in shared}
    columns["reason_codes"] = JSONTextColumn(to_json(r).decode() for r in columns["reason_codes"])
    return DecisionColumns(len(rows), columns, {name: rows[0][name] for name in shared})


def test_rows_given_by_column_convert_exactly_like_row_dicts(audit_url: str) -> None:
    engine = make_engine(audit_url)
    writer = RowWriter(engine)
    rows = decision_rows(40, "columns")
    assert writer.values(as_columns(rows)) == writer.values(rows)
    incomplete = as_columns(rows)
    del incomplete.columns["score"]
    with pytest.raises(ValueError, match="decision columns missing: score"):
        writer.values(incomplete)
    engine.dispose()


async def record_concurrently(url: str, groups: list[list[dict]]) -> AuditTrail:
    audit = AuditTrail(url, timeout_s=TRAIL_DEADLINE_S)
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
def test_groups_larger_than_the_pipe_are_committed(
    run: Callable[..., AuditTrail], tmp_path: Path
) -> None:
    # The server runs on uvloop, whose subprocess pipes differ from asyncio's; a message three
    # times the pipe's size goes through in pieces as the writer reads.
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    big = decision_rows(1500, "big")
    for row in big:
        row["inputs"] = {**row["inputs"], "Note": "x" * (2 * PIPE_BYTES // 1000)}
    audit = run(record_concurrently(url, [big, decision_rows(3, "small")]))
    assert audit.count() == 1503
    assert audit.get(big[-1]["request_id"])["inputs"] == big[-1]["inputs"]
    audit.engine.dispose()


def _run_trail(url: str, scenario: Callable[[AuditTrail], Awaitable[None]]) -> AuditTrail:
    async def run() -> AuditTrail:
        audit = AuditTrail(url, timeout_s=TRAIL_DEADLINE_S)
        await audit.start()
        try:
            await scenario(audit)
        finally:
            await audit.stop()
        return audit

    return asyncio.run(run())


def test_parts_sent_ahead_commit_whole_with_the_next_group(audit_url: str) -> None:
    parts = [decision_rows(200, f"part-{i}") for i in range(3)]
    singles = decision_rows(2, "singles")

    async def scenario(audit: AuditTrail) -> None:
        waiting = audit.submit(singles)  # queued before the parts, committed after them
        process = audit._process
        committed = audit.submit_parts(iter(parts))
        assert audit._parts_awaiting_commit  # they went ahead, not as one group
        await asyncio.gather(waiting, committed)
        assert audit._process is process

    audit = _run_trail(audit_url, scenario)
    assert audit.count() == 602
    assert audit.get(parts[1][5]["request_id"])["inputs"] == parts[1][5]["inputs"]
    audit.engine.dispose()


def test_each_part_goes_to_the_writer_as_soon_as_it_is_built(tmp_path: Path) -> None:
    # The iterator builds its parts lazily: the writer process inserts one while the next is
    # built. Seen from the iterator: the previous part's message is on the pipe already.
    parts = [decision_rows(20, f"part-{i}") for i in range(3)]
    seen: list[int] = []

    async def scenario(audit: AuditTrail) -> None:
        assert audit._pipe is not None
        pipe = audit._pipe
        written = [0]
        write = pipe.write

        def counting(data: bytes) -> None:
            written[0] += 1
            write(data)

        pipe.write = counting  # type: ignore[method-assign]

        def build() -> Iterator[list[dict]]:
            for rows in parts:
                seen.append(written[0])
                yield rows

        await audit.submit_parts(build())

    audit = _run_trail(f"sqlite:///{tmp_path / 'audit.db'}", scenario)
    assert seen == [0, 1, 2]
    assert audit.count() == 60
    audit.engine.dispose()


def test_a_group_of_row_dicts_and_columns_commits_both(audit_url: str) -> None:
    dicts, by_column = decision_rows(3, "dicts"), decision_rows(300, "columns")

    async def scenario(audit: AuditTrail) -> None:
        await asyncio.gather(audit.submit(dicts), audit.submit(as_columns(by_column)))

    audit = _run_trail(audit_url, scenario)
    assert audit.count() == 303
    stored = audit.get(by_column[7]["request_id"])
    assert stored["inputs"] == by_column[7]["inputs"]
    assert stored["reason_codes"] == by_column[7]["reason_codes"]
    assert stored["batch_index"] == 7
    audit.engine.dispose()


def test_parts_whose_iterator_raises_are_rolled_back(audit_url: str) -> None:
    sent, later = decision_rows(50, "abandoned"), decision_rows(4, "later")

    def build() -> Iterator[list[dict]]:
        yield sent
        raise RuntimeError("failed while building the next part")

    async def scenario(audit: AuditTrail) -> None:
        with pytest.raises(RuntimeError, match="while building"):
            audit.submit_parts(build())
        assert not audit._parts_awaiting_commit
        await audit.record(later)

    audit = _run_trail(audit_url, scenario)
    assert audit.count() == 4
    assert audit.get(sent[0]["request_id"]) is None
    audit.engine.dispose()


def test_a_failed_part_fails_its_commit_and_keeps_nothing_of_it(audit_url: str) -> None:
    first = decision_rows(30, "first")
    clash = decision_rows(30, "clash")
    clash[7]["request_id"] = first[3]["request_id"]  # the primary key refuses the second part
    outcome: dict[str, object] = {}

    async def scenario(audit: AuditTrail) -> None:
        committed = audit.submit_parts(iter([first, clash]))
        with pytest.raises(AuditUnavailable, match="audit database write failed"):
            await committed
        await audit.record(decision_rows(2, "after"))  # the writer goes on
        outcome["ok"] = True

    audit = _run_trail(audit_url, scenario)
    assert outcome == {"ok": True}
    assert audit.count() == 2
    audit.engine.dispose()


def test_parts_lost_with_a_dead_writer_fail_their_commit(tmp_path: Path) -> None:
    rows = decision_rows(40, "orphaned")

    async def scenario(audit: AuditTrail) -> None:
        assert audit._process is not None
        process = audit._process

        def build() -> Iterator[list[dict]]:
            yield rows
            # Dies with the part, before its commit is queued: gone before the writer task
            # writes the commit, which then goes to a dead pipe or to a new writer process.
            process.kill()
            with contextlib.suppress(ChildProcessError):  # the event loop reaped it already
                os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)

        committed = audit.submit_parts(build())
        with pytest.raises(AuditUnavailable, match="exited"):
            await committed
        await audit.record(decision_rows(1, "after"))  # a new writer takes over

    audit = _run_trail(f"sqlite:///{tmp_path / 'audit.db'}", scenario)
    assert audit.count() == 1
    audit.engine.dispose()


def test_no_parts_without_a_running_trail(tmp_path: Path) -> None:
    audit = AuditTrail(f"sqlite:///{tmp_path / 'audit.db'}", timeout_s=TRAIL_DEADLINE_S)
    built: list[int] = []

    def build() -> Iterator[list[dict]]:
        built.append(1)
        yield decision_rows(1, "never")

    with pytest.raises(AuditUnavailable, match="not running"):
        audit.submit_parts(build())
    assert built == []  # refused before anything was built
    audit.engine.dispose()


def test_parts_go_as_one_group_while_a_group_waits_to_be_written(tmp_path: Path) -> None:
    # A group taken from the queue while a new writer process starts is written after any parts
    # sent meanwhile, and would commit them: no parts are sent then.
    parts = [decision_rows(10, f"part-{i}") for i in range(2)]

    async def scenario(audit: AuditTrail) -> None:
        audit._composing = True
        committed = audit.submit_parts(iter(parts))
        assert not audit._parts_awaiting_commit  # queued as one group
        audit._composing = False
        await committed
        await audit.submit_parts(iter([decision_rows(5, "ahead")]))

    audit = _run_trail(f"sqlite:///{tmp_path / 'audit.db'}", scenario)
    assert audit.count() == 25
    audit.engine.dispose()


def test_second_parts_go_as_one_group_until_the_first_are_committed(audit_url: str) -> None:
    # Both would share the writer's one open transaction, and the second's abort would roll
    # back the first's parts: the second sends its rows as one group instead.
    first, second, third = (decision_rows(300, name) for name in ("first", "second", "third"))

    async def scenario(audit: AuditTrail) -> None:
        committed = audit.submit_parts(iter([first]))
        assert audit._parts_awaiting_commit
        queued = len(audit._pending)
        also = audit.submit_parts(iter([second]))
        assert len(audit._pending) == queued + 1
        assert audit._pending[-1][0] == (second,)  # the whole of it, in the group
        await asyncio.gather(committed, also)
        assert not audit._parts_awaiting_commit  # the commit has been written: free again
        await audit.submit_parts(iter([third]))

    audit = _run_trail(audit_url, scenario)
    assert audit.count() == 900
    audit.engine.dispose()


def test_parts_built_by_a_nested_call_go_as_one_group(tmp_path: Path) -> None:
    # An iterator that itself submits parts (nothing does today) must not interleave its parts
    # with the outer ones in the writer's open transaction.
    outer, inner = decision_rows(10, "outer"), decision_rows(10, "inner")
    futures: list[asyncio.Future[None]] = []

    async def scenario(audit: AuditTrail) -> None:
        def build() -> Iterator[list[dict]]:
            yield outer
            futures.append(audit.submit_parts(iter([inner])))

        futures.append(audit.submit_parts(build()))
        await asyncio.gather(*futures)

    audit = _run_trail(f"sqlite:///{tmp_path / 'audit.db'}", scenario)
    assert audit.count() == 20
    audit.engine.dispose()


def test_a_group_that_cannot_be_sent_takes_its_parts_with_it(audit_url: str) -> None:
    parts = decision_rows(300, "parts")
    broken = decision_rows(1, "broken")
    del broken[0]["score"]  # a row the driver values cannot be made of

    async def scenario(audit: AuditTrail) -> None:
        committed = audit.submit_parts(iter([parts]))
        refused = audit.submit(broken)
        for future in (committed, refused):
            with pytest.raises(AuditUnavailable, match="audit writer failed"):
                await future
        await audit.record(decision_rows(2, "later"))  # a new writer process takes over

    audit = _run_trail(audit_url, scenario)
    assert audit.count() == 2  # none of the refused batch's parts
    audit.engine.dispose()


def test_the_writer_task_outlives_a_writer_that_cannot_be_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = decision_rows(1, "broken")
    del broken[0]["score"]

    async def scenario(audit: AuditTrail) -> None:
        async def cannot_stop() -> None:
            raise RuntimeError("cannot stop the writer")

        with monkeypatch.context() as patch:
            patch.setattr(audit, "_end_process", cannot_stop)
            with pytest.raises(AuditUnavailable):
                await asyncio.wait_for(audit.submit(broken), timeout=10)
        # The writer task is still there.
        await asyncio.wait_for(audit.record(decision_rows(2, "later")), timeout=10)

    audit = _run_trail(f"sqlite:///{tmp_path / 'audit.db'}", scenario)
    assert audit.count() == 2
    audit.engine.dispose()


def test_a_ctrl_c_leaves_the_writer_to_its_parent(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C in a terminal reaches every process of its group, the writer too. It ignores the
    SIGINT (no KeyboardInterrupt traceback), keeps committing, and exits when the service, which
    gets the same SIGINT, stops it by closing its input."""

    writers = []

    async def scenario(audit: AuditTrail) -> None:
        process = audit._process
        assert process is not None
        writers.append(process)
        await asyncio.wait_for(audit.record(decision_rows(1, "before")), timeout=10)
        os.kill(process.pid, signal.SIGINT)
        # A writer that takes it dies within milliseconds; one that ignores it is still here.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), timeout=1.0)
        await asyncio.wait_for(audit.record(decision_rows(1, "after")), timeout=10)
        assert audit._process is process  # the same writer committed it

    started = time.monotonic()
    audit = _run_trail(f"sqlite:///{tmp_path / 'audit.db'}", scenario)
    assert audit.count() == 2
    audit.engine.dispose()
    assert time.monotonic() - started < 20  # stopped by its input's end, not killed after 10 s
    assert writers[0].returncode == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_the_writer_process_has_no_database_url_on_its_command_line(tmp_path: Path) -> None:
    # Every local user can read a process's arguments (ps); the URL may hold a password.
    url = f"sqlite:///{tmp_path / 'audit-secret.db'}"

    async def scenario(audit: AuditTrail) -> None:
        assert audit._process is not None
        arguments = Path(f"/proc/{audit._process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"service.audit.writer" in arguments
        assert not any(b"audit-secret" in argument for argument in arguments)
        await audit.record(decision_rows(1, "written"))  # it got the URL all the same

    if not Path("/proc/self/cmdline").exists():
        pytest.skip("no /proc")
    audit = _run_trail(url, scenario)
    assert audit.count() == 1
    audit.engine.dispose()


def test_messages_read_back_as_written() -> None:
    rows = [(1, "a", None, 2.5), (2, "b", "{}", 0.0)]
    stream = io.BytesIO(
        protocol.message("open", "sqlite:///x.db")
        + protocol.message("part", rows)
        + protocol.message("commit", [])
    )
    assert protocol.read_message(stream) == ("open", "sqlite:///x.db")
    assert protocol.read_message(stream) == ("part", rows)
    assert protocol.read_message(stream) == ("commit", [])
    assert protocol.read_message(stream) is None
    assert protocol.failure_of(protocol.reply(None)) is None
    assert protocol.failure_of(protocol.reply("IntegrityError")) == "IntegrityError"
