"""The decision audit trail: every answer is committed to the database before it is sent.

Writes go through one writer that commits whatever has queued up in a single transaction (group
commit): each request still waits for its own record to be durable, but concurrent requests share a
commit instead of queueing for one each. The writer is a separate process (``service.audit_writer``)
inserting through the driver itself, one multi-row ``INSERT`` per group, with values converted by
the columns' own SQLAlchemy bind processors, so rows read back through SQLAlchemy exactly as if it
had written them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import operator
import os
import pickle
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
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


class JSONText(str):
    """A value for a JSON column that is JSON text already: stored as it is, not serialised."""


class AuditUnavailable(RuntimeError):
    """A decision could not be recorded; the request must not be answered."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (GET /v1/decisions) run beside the writer; FULL keeps commits durable.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """The audit database's engine: JSON through pydantic-core, SQLite in WAL with full sync."""
    engine = create_engine(
        url, pool_pre_ping=True, json_serializer=lambda value: to_json(value).decode()
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class AuditTrail:
    """Owns the writer process; ``record`` resolves once the rows are committed.

    Requests hand their rows to a writer task on the event loop and wait on a future. The writer
    task sends everything queued to the writer process (``service.audit_writer``) as one JSON
    message and settles all the futures when the process answers that the group is committed.
    The database work runs in that process: in a thread of this one, the driver's every call gave
    up and retook the GIL the event loop needs (callgrind and /proc measurements in
    docs/serving.md). Reads (``get``, ``count``) go through this process's own engine.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        # Built now so that an unsupported driver is refused at start, not on the first request.
        self._rows = RowWriter(self.engine)
        self._pending: list[tuple[Sequence[dict[str, Any]], asyncio.Future[None]]] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._process: asyncio.subprocess.Process | None = None
        self._pipe: int | None = None  # the writer process's stdin

    async def start(self) -> None:
        """Create the table if needed, start the writer process and the task feeding it."""
        await asyncio.to_thread(metadata.create_all, self.engine)
        self._process = await self._spawn()
        self._wake = asyncio.Event()
        self._stopping = False
        self._writer = asyncio.create_task(self._write_forever(), name="audit-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop the writer process."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._stopping = True
            assert self._wake is not None
            self._wake.set()
            await writer
        await self._end_process()
        self.engine.dispose()

    async def record(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue rows and wait until they are committed; raise AuditUnavailable if they are not.

        Each row is a dict holding every column of ``decisions``.
        """
        await self.submit(rows)

    def submit(self, rows: Sequence[dict[str, Any]]) -> asyncio.Future[None]:
        """Queue rows for the next group; the future resolves once they are committed.

        The writer task sends the group at the event loop's next turn: a caller that yields once
        (``await asyncio.sleep(0)``) can do other work while the writer process commits.
        """
        if self._writer is None or self._wake is None:
            raise AuditUnavailable("audit trail is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        self._wake.set()
        return future

    async def _write_forever(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._commit_pending()
            if self._stopping and not self._pending:
                return

    async def _commit_pending(self) -> None:
        group, self._pending = self._pending, []
        if not group:
            return
        # Converted here, so the writer process only unpickles flat rows and inserts them:
        # converting there meant parsing every applicant's inputs and reason codes only to
        # serialise them again. Pickle, not JSON, carries them: the JSON columns are text already,
        # and JSON would escape them here and unescape them there (~4 ms for 1,000 rows).
        records = [row for pending_rows, _ in group for row in pending_rows]
        try:
            rows = self._rows.values(records)
            failure = await self._send(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as exc:  # the writer must outlive anything, or requests wait forever
            logger.exception("audit writer failed")
            failure = f"audit writer failed: {type(exc).__name__}"
        error = None if failure is None else AuditUnavailable(failure)
        for _, future in group:
            if future.done():  # its request was cancelled (client gone)
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    async def _send(self, message: bytes) -> str | None:
        """One group to the writer process; None once committed, else why not."""
        if self._process is None or self._process.returncode is not None:
            # It died (or could not start) since the last group: start another one.
            await self._end_process()
            self._process = await self._spawn()
        process, pipe = self._process, self._pipe
        assert process.stdout is not None and pipe is not None
        try:
            await _write_all(pipe, len(message).to_bytes(4, "big") + message)
            reply = await process.stdout.readline()
        except (BrokenPipeError, ConnectionResetError):
            reply = b""
        if not reply:
            await self._end_process()
            return "audit writer process exited"
        if reply == b"ok\n":
            return None
        return f"audit database write failed: {reply.decode().strip()}"

    async def _spawn(self) -> asyncio.subprocess.Process:
        project = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join(p for p in (project, os.environ.get("PYTHONPATH")) if p)
        # A pipe of our own rather than the event loop's: ours can be widened (uvloop gives its
        # subprocesses socket pairs), and writing to it needs nothing but the file descriptor.
        read_end, write_end = os.pipe()
        try:
            _widen_pipe(write_end)
            os.set_blocking(write_end, False)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service.audit_writer",
                self.url,
                stdin=read_end,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": path},
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._pipe = write_end
        return process

    async def _end_process(self) -> None:
        process, self._process = self._process, None
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            os.close(pipe)  # end of input: the writer commits nothing more and exits
        if process is None:
            return
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()

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


# A 1,000-applicant group pickles to ~0.7 MB. Through Linux's default 64 KB pipe it went over in
# pieces, each waiting for the event loop to come back to the pipe; in a pipe this wide it goes
# in one write and the writer process starts on it at once.
PIPE_BYTES = 1 << 20


def _widen_pipe(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        return
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if set_size is None:
        return
    try:
        fcntl.fcntl(fd, set_size, PIPE_BYTES)
    except OSError as exc:  # above /proc/sys/fs/pipe-max-size: the default pipe still works
        logger.info("audit pipe keeps its default size: %s", exc)


def _passing_json_text(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def process(value: Any) -> Any:
        return value if value.__class__ is JSONText else processor(value)

    return process


def _settle_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking pipe, waiting on the event loop while it is full."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            writable: asyncio.Future[None] = loop.create_future()
            loop.add_writer(fd, _settle_once, writable)
            try:
                await writable
            finally:
                loop.remove_writer(fd)


class RowWriter:
    """Turns row dicts into driver values and inserts them with one multi-row statement.

    Values are converted by the columns' own SQLAlchemy bind processors (JSON text, SQLite's
    datetime text), so SQLAlchemy reads the rows back as if it had written them. One statement per
    group matters: SQLite's ``executemany`` gives up and retakes Python's GIL for every row, and
    while the event loop is busy each of those is a thread switch; other drivers would make a
    round trip per row.
    """

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        columns = list(decisions.columns)
        self.names = [column.name for column in columns]
        self._in_column_order = operator.itemgetter(*self.names)
        # (column index, processor, whether records share its values: a request's timestamp)
        self.processors = [
            (
                index,
                _passing_json_text(processor) if isinstance(column.type, JSON) else processor,
                isinstance(column.type, DateTime),
            )
            for index, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]
        placeholder = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if placeholder is None:
            raise ValueError(
                f"audit database driver {dialect.driver!r} uses the {dialect.paramstyle!r} "
                "parameter style; supported drivers use qmark, format or pyformat "
                "(sqlite3, psycopg2, pymysql)"
            )
        self.head = f"INSERT INTO {decisions.name} ({', '.join(self.names)}) VALUES "
        self.one_row = "(" + ", ".join([placeholder] * len(self.names)) + ")"
        # SQLite before 3.32 allows 999 parameters per statement.
        legacy_sqlite = dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32)
        self.rows_per_statement = 999 // len(self.names) if legacy_sqlite else 1000

    def values(self, records: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Decision records (dicts holding every column) as driver values in column order.

        Column by column, so the loops run in C: a record becomes a tuple through ``itemgetter``,
        the tuples are transposed into columns, each converted column maps its processor, and
        the columns are zipped back. An object shared by many records (a request's timestamp) is
        converted once.
        """
        if not records:
            return []
        columns = list(zip(*map(self._in_column_order, records), strict=True))
        for index, processor, shared in self.processors:
            column = columns[index]
            if not shared:
                columns[index] = tuple(map(processor, column))
                continue
            converted: dict[int, Any] = {}
            for value in column:
                if id(value) not in converted:
                    converted[id(value)] = processor(value)
            columns[index] = tuple(converted[id(value)] for value in column)
        return list(zip(*columns, strict=True))

    def insert(self, connection: PoolProxiedConnection, rows: Sequence[Sequence[Any]]) -> None:
        cursor = connection.cursor()
        step = self.rows_per_statement
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            cursor.execute(
                self.head + ", ".join([self.one_row] * len(chunk)),
                list(itertools.chain.from_iterable(chunk)),
            )
        cursor.close()
