"""The decision audit trail: every answer is committed to the database before it is sent.

Writes go through one writer thread that commits whatever has queued up in a single transaction
(group commit): each request still waits for its own record to be durable, but concurrent requests
share a commit instead of queueing for one each. The writer inserts through the driver itself
(``executemany`` on SQLite, one multi-row ``INSERT`` elsewhere) with values converted by the
columns' own SQLAlchemy bind processors, so rows read back through SQLAlchemy exactly as if it had
written them, without its per-statement overhead on every commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.pool import PoolProxiedConnection

logger = logging.getLogger("loanrisk.audit")

metadata = MetaData()
decisions = Table(
    "decisions",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("batch_id", String(64), nullable=True, index=True),
    Column("batch_index", Integer, nullable=True),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(50), nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("inputs", JSON, nullable=False),
    Column("probability_of_default", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("risk_band", String(20), nullable=False),
    Column("decision", String(20), nullable=False),
    Column("reason_codes", JSON, nullable=False),
)

MAX_GROUP = 1024
# Keeps a multi-row INSERT's parameter count (13 per row) under drivers' and servers' limits.
MAX_ROWS_PER_STATEMENT = 1000
_STOP = object()


class AuditUnavailable(RuntimeError):
    """A decision could not be recorded; the request must not be answered."""


@dataclass
class _Pending:
    rows: Sequence[dict[str, Any]]
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (GET /v1/decisions) run beside the writer; FULL keeps commits durable.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class AuditTrail:
    """Owns the engine and the writer thread; ``record`` resolves once the rows are committed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(
            url, pool_pre_ping=True, json_serializer=lambda value: to_json(value).decode()
        )
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._insert_rows = _row_inserter(self.engine)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Create the table if needed and start the writer."""
        metadata.create_all(self.engine)
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
            self._thread = None
        self.engine.dispose()

    async def record(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue rows and wait until they are committed; raise AuditUnavailable if they are not."""
        if self._thread is None:
            raise AuditUnavailable("audit trail is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Pending(rows, future, loop))
        await future

    def _run(self) -> None:
        # One connection for the writer's life: checking one out of the pool per commit (and
        # pinging it) cost more than the insert. A failed commit drops it; the next one reconnects.
        connection: PoolProxiedConnection | None = None
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                group = [first]
                stop_after = False
                while len(group) < MAX_GROUP:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop_after = True
                        break
                    group.append(item)
                connection = self._commit(group, connection)
                if stop_after:
                    return
        finally:
            if connection is not None:
                connection.close()

    def _commit(
        self, group: list[_Pending], connection: PoolProxiedConnection | None
    ) -> PoolProxiedConnection | None:
        rows = [row for pending in group for row in pending.rows]
        error: BaseException | None = None
        try:
            if connection is None:
                connection = self.engine.raw_connection()
            self._insert_rows(connection, rows)
            connection.commit()
        except Exception as exc:  # any database failure means "not audited"
            logger.error("audit write failed for %d records: %s", len(rows), exc)
            error = AuditUnavailable(f"audit database write failed: {type(exc).__name__}")
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.invalidate()  # never hand a broken connection back to the pool
            connection = None
        for pending in group:
            pending.loop.call_soon_threadsafe(_settle, pending.future, error)
        return connection

    def get(self, request_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = (
                connection.execute(select(decisions).where(decisions.c.request_id == request_id))
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(decisions)).scalar_one())


def _row_inserter(engine: Engine) -> Callable[[PoolProxiedConnection, list[dict[str, Any]]], None]:
    """A function inserting row dicts into ``decisions`` through a raw driver connection."""
    dialect = engine.dialect
    columns = list(decisions.columns)
    names = [column.name for column in columns]
    processors = [
        (index, processor)
        for index, column in enumerate(columns)
        if (processor := column.type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    head = f"INSERT INTO {decisions.name} ({', '.join(names)}) VALUES "

    def values(row: dict[str, Any]) -> list[Any]:
        out = [row.get(name) for name in names]
        for index, processor in processors:
            out[index] = processor(out[index])
        return out

    if dialect.paramstyle == "qmark":
        sql = head + "(" + ", ".join("?" * len(names)) + ")"

        def insert_many(connection: PoolProxiedConnection, rows: list[dict[str, Any]]) -> None:
            cursor = connection.cursor()
            cursor.executemany(sql, [values(row) for row in rows])
            cursor.close()

        return insert_many
    if dialect.paramstyle in ("format", "pyformat"):
        one_row = "(" + ", ".join(["%s"] * len(names)) + ")"

        def insert_many(connection: PoolProxiedConnection, rows: list[dict[str, Any]]) -> None:
            # One statement for the whole group: executemany is a round trip per row on these
            # drivers.
            cursor = connection.cursor()
            for start in range(0, len(rows), MAX_ROWS_PER_STATEMENT):
                chunk = rows[start : start + MAX_ROWS_PER_STATEMENT]
                cursor.execute(
                    head + ", ".join([one_row] * len(chunk)),
                    [value for row in chunk for value in values(row)],
                )
            cursor.close()

        return insert_many
    raise ValueError(
        f"audit database driver {dialect.driver!r} uses the {dialect.paramstyle!r} parameter "
        "style; supported drivers use qmark, format or pyformat (sqlite3, psycopg2, pymysql)"
    )


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
