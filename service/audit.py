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
import contextlib
import itertools
import logging
import operator
import os
import pickle
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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


class JSONTextColumn(list[str]):
    """Values of a JSON column (in :class:`DecisionColumns`) that are JSON text already."""


@dataclass(frozen=True)
class DecisionColumns:
    """``count`` decision rows given column by column: ``columns`` holds a sequence of one value
    per row, ``shared`` one value for every row (a request's timestamp, model, batch id).

    A large batch's rows are built this way: no dict per row, and shared values converted once.
    """

    count: int
    columns: Mapping[str, Sequence[Any]]
    shared: Mapping[str, Any]


# What a group or a transaction's part holds: row dicts (every column of ``decisions``) or columns.
DecisionRows = Sequence[dict[str, Any]] | DecisionColumns


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


# Rows queued for the next group, the future their request waits on, and the writer process
# their transaction's parts went to (None for rows without parts).
_Pending = tuple[DecisionRows, asyncio.Future[None], int | None]


def _message(kind: str, rows: list[tuple[Any, ...]]) -> bytes:
    """A message for the writer process: its length, then the pickled kind and rows."""
    body = pickle.dumps((kind, rows), protocol=pickle.HIGHEST_PROTOCOL)
    return len(body).to_bytes(4, "big") + body


class AuditTransaction:
    """Parts of one transaction, sent ahead of its commit (see :meth:`AuditTrail.transaction`)."""

    def __init__(self, trail: AuditTrail, pipe: asyncio.WriteTransport, generation: int) -> None:
        self._trail = trail
        self._pipe = pipe
        self._generation = generation
        self.committed = False

    def send(self, rows: DecisionRows) -> None:
        """Convert rows and hand them to the writer process, which inserts them uncommitted."""
        self._pipe.write(_message("part", self._trail._rows.values(rows)))

    def commit(self) -> asyncio.Future[None]:
        """End the transaction with the next group; the future resolves once all of it is
        committed, and fails if any part was lost."""
        future = self._trail._queue((), self._generation)
        self.committed = True
        return future


class AuditTrail:
    """Owns the writer process; ``record`` resolves once the rows are committed.

    Requests hand their rows to a writer task on the event loop and wait on a future. The writer
    task sends everything queued to the writer process (``service.audit_writer``) as one message
    and settles all the futures when the process answers that the group is committed. A large
    batch may send its rows ahead in parts (:meth:`transaction`), committed with the next group.
    The database work runs in that process: in a thread of this one, the driver's every call gave
    up and retook the GIL the event loop needs (callgrind and /proc measurements in
    docs/serving.md). Reads (``get``, ``count``) go through this process's own engine.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        # Built now so that an unsupported driver is refused at start, not on the first request.
        self._rows = RowWriter(self.engine)
        self._pending: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._process: asyncio.subprocess.Process | None = None
        self._pipe: asyncio.WriteTransport | None = None  # the writer process's stdin
        self._generation = 0  # counts writer processes: parts sent to one die with it
        self._composing = False  # a group is taken from the queue and not yet written
        self._parts_awaiting_commit = False  # a transaction's parts precede no commit yet

    async def start(self) -> None:
        """Create the table if needed, start the writer process and the task feeding it."""
        await asyncio.to_thread(metadata.create_all, self.engine)
        await self._spawn()
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

    async def record(self, rows: DecisionRows) -> None:
        """Queue rows and wait until they are committed; raise AuditUnavailable if they are not.

        Each row is a dict holding every column of ``decisions``, or the rows come as
        :class:`DecisionColumns`.
        """
        await self.submit(rows)

    def submit(self, rows: DecisionRows) -> asyncio.Future[None]:
        """Queue rows for the next group; the future resolves once they are committed.

        The writer task sends the group at the event loop's next turn: a caller that yields once
        (``await asyncio.sleep(0)``) can do other work while the writer process commits.
        """
        return self._queue(rows, None)

    def submit_parts(self, parts: Iterator[DecisionRows]) -> asyncio.Future[Any]:
        """Rows given in parts, each sent to the writer as soon as ``parts`` yields it, all
        committed with the next group (queued together when no writer process runs)."""
        with self.transaction() as transaction:
            if transaction is None:
                return asyncio.gather(*map(self.submit, parts))
            for part in parts:
                transaction.send(part)
            return transaction.commit()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[AuditTransaction | None]:
        """Rows sent to the writer ahead, in parts, and committed together with the next group.

        A large batch sends each part as soon as it is built, so the writer process inserts one
        part while the service builds the next; :meth:`AuditTransaction.commit` queues the
        transaction's end like any group and returns its future. Everything between entering and
        committing must run without awaiting: no other group can then reach the writer between
        the parts. Leaving without committing (an exception) rolls the parts back. Yields None
        when no writer process is running; the caller then submits its rows in one group.
        """
        pipe, process = self._pipe, self._process
        # Not while a group taken from the queue waits to be written (a new writer process is
        # being started for it): it would commit these parts with it, and its failure would not
        # be theirs to see. Nor while another transaction's parts await their commit: both would
        # share the writer's one open transaction, and one's abort would roll back the other's.
        if (
            self._writer is None
            or pipe is None
            or pipe.is_closing()
            or process is None
            or process.returncode is not None
            or self._composing
            or self._parts_awaiting_commit
        ):
            yield None
            return
        transaction = AuditTransaction(self, pipe, self._generation)
        try:
            yield transaction
        finally:
            if transaction.committed:
                # Until the writer task writes the next commit, which takes these parts along.
                self._parts_awaiting_commit = True
            else:
                pipe.write(_message("abort", []))

    def _queue(self, rows: DecisionRows, generation: int | None) -> asyncio.Future[None]:
        if self._writer is None or self._wake is None:
            raise AuditUnavailable("audit trail is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future, generation))
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
        records = [
            row
            for rows, _, _ in group
            if not isinstance(rows, DecisionColumns)
            for row in rows  # type: ignore[union-attr]
        ]
        generation = None
        self._composing = True
        try:
            values = self._rows.values(records)
            for rows, _, _ in group:
                if isinstance(rows, DecisionColumns):
                    values += self._rows.values(rows)
            generation, failure = await self._send(values)
        except Exception as exc:  # the writer must outlive anything, or requests wait forever
            logger.exception("audit writer failed")
            failure = f"audit writer failed: {type(exc).__name__}"
            # Its open transaction (parts of a batch in this group) must not be committed by the
            # next group, and a reply may be on its way: a new writer process starts afresh.
            try:
                await self._end_process()
            except Exception:  # it is forgotten all the same: the next group starts another
                logger.exception("audit writer could not be stopped")
        finally:
            self._composing = False
        for _, future, required in group:
            if future.done():  # its request was cancelled (client gone)
                continue
            if failure is None and required not in (None, generation):
                # Its transaction's parts went to a writer process that has since died.
                future.set_exception(AuditUnavailable("audit writer process exited"))
            elif failure is None:
                future.set_result(None)
            else:
                future.set_exception(AuditUnavailable(failure))

    async def _send(self, rows: list[tuple[Any, ...]]) -> tuple[int, str | None]:
        """One group to the writer process: which process took it, and None once committed,
        else why not."""
        if self._process is None or self._process.returncode is not None:
            # It died (or could not start) since the last group: start another one.
            await self._end_process()
            await self._spawn()
        process, pipe, generation = self._process, self._pipe, self._generation
        assert process is not None and process.stdout is not None and pipe is not None
        pipe.write(_message("commit", rows))
        self._composing = self._parts_awaiting_commit = False
        try:
            reply = await process.stdout.readline()
        except ConnectionResetError:
            reply = b""
        if not reply:
            await self._end_process()
            return generation, "audit writer process exited"
        if reply == b"ok\n":
            return generation, None
        return generation, f"audit database write failed: {reply.decode().strip()}"

    async def _spawn(self) -> None:
        project = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join(p for p in (project, os.environ.get("PYTHONPATH")) if p)
        # A pipe of our own rather than the event loop's: ours can be widened (uvloop gives its
        # subprocesses socket pairs).
        read_end, write_end = os.pipe()
        try:
            _widen_pipe(write_end)
            self._process = await asyncio.create_subprocess_exec(
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
        # The transport writes what the pipe takes at once and the rest as it drains, so a
        # message is never half written, whoever writes it and whatever awaits follow.
        self._pipe, _ = await asyncio.get_running_loop().connect_write_pipe(
            asyncio.BaseProtocol, os.fdopen(write_end, "wb", buffering=0)
        )
        self._generation += 1

    async def _end_process(self) -> None:
        process, self._process = self._process, None
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.close()  # end of input, once written out: the writer commits nothing more, exits
        if process is None:
            return
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):  # it exited just now
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
        # As a plain str: a str subclass pickles ~50 times slower on its way to the writer.
        return str(value) if value.__class__ is JSONText else processor(value)

    return process


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
        self._processor_of = {
            self.names[index]: processor for index, processor, _ in self.processors
        }
        self.head = f"INSERT INTO {decisions.name} ({', '.join(self.names)}) VALUES "
        self.one_row = "(" + ", ".join([placeholder] * len(self.names)) + ")"
        # SQLite before 3.32 allows 999 parameters per statement.
        legacy_sqlite = dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32)
        self.rows_per_statement = 999 // len(self.names) if legacy_sqlite else 1000

    def values(self, records: DecisionRows) -> list[tuple[Any, ...]]:
        """Decision records (dicts holding every column, or :class:`DecisionColumns`) as driver
        values in column order.

        Column by column, so the loops run in C: a record becomes a tuple through ``itemgetter``,
        the tuples are transposed into columns, each converted column maps its processor, and
        the columns are zipped back. An object shared by many records (a request's timestamp) is
        converted once.
        """
        if isinstance(records, DecisionColumns):
            return self._values_of_columns(records)
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

    def _values_of_columns(self, rows: DecisionColumns) -> list[tuple[Any, ...]]:
        missing = set(self.names).difference(rows.columns, rows.shared)
        if missing:
            raise ValueError(f"decision columns missing: {', '.join(sorted(missing))}")
        columns: list[Iterable[Any]] = []
        for name in self.names:
            processor = self._processor_of.get(name)
            if name in rows.shared:
                value = rows.shared[name]
                converted = value if processor is None else processor(value)
                columns.append(itertools.repeat(converted, rows.count))
                continue
            column = rows.columns[name]
            if processor is not None and not isinstance(column, JSONTextColumn):
                column = map(processor, column)
            columns.append(column)
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
