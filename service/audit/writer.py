"""The audit writer process: commits groups of decision records sent by the service.

Started by :class:`service.audit.AuditTrail` as ``python -m service.audit.writer``. Reads the
messages of :mod:`service.audit.protocol` from stdin, the database URL first: a ``commit``'s rows
are inserted and the transaction committed, and one line answers it on stdout; a ``part``'s rows
are inserted into the open transaction without an answer (a large batch sent ahead of its
commit), and a ``shadow``'s rows likewise into ``shadow_scores`` (a challenger's scores, committed
with their decisions); ``abort`` rolls the open transaction back; ``deadline`` sets the wall-clock
time by which the next commit must land. Exits when stdin ends, which is how the service stops
it; SIGINT (a Ctrl-C in the service's terminal) is ignored.

A commit that lands after its requests were answered 503 would leave records of decisions nobody
received. The service answers 503 at the deadline whatever the writer is doing, and a commit
already sent to a database that is frozen, not dead, is carried out when the database wakes. So
the commit checks the deadline the service sent: the writer rolls back instead of committing
once it is past, and on PostgreSQL the database checks again inside ``COMMIT`` itself, with a
deferred constraint trigger on a temporary table that raises when ``clock_timestamp()`` is past
it (the transaction then rolls back). Its cost: one one-row INSERT per group. The deadline is the
service's wall clock, so the check assumes the two hosts' clocks agree to within the reply margin
(``service.audit.trail.REPLY_MARGIN``, 10% of the deadline).

On SQLite, committed pages are copied from the write-ahead log into the database file (a
checkpoint) by a thread of this process rather than by the commit that happens to cross SQLite's
threshold: that commit took about four times as long (a 1,000-row group: ~10 ms against ~2.5 ms).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO

from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

from service.audit import protocol
from service.audit.rows import RowWriter
from service.audit.schema import make_engine, shadow_scores
from service.logs import configure_logging

logger = logging.getLogger("loanrisk.audit.writer")

# Created in each PostgreSQL session of the writer (temporary objects: no migration, nothing left
# behind). The trigger is deferred, so it runs inside COMMIT, after everything else.
_GUARD = """
CREATE FUNCTION pg_temp.loanrisk_commit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF clock_timestamp() > NEW.deadline THEN
        RAISE EXCEPTION 'audit commit past its deadline' USING ERRCODE = '57014';
    END IF;
    RETURN NULL;
END $$;
CREATE TEMPORARY TABLE loanrisk_commit_deadline (deadline timestamptz NOT NULL)
    ON COMMIT DELETE ROWS;
CREATE CONSTRAINT TRIGGER loanrisk_commit_guard AFTER INSERT ON loanrisk_commit_deadline
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.loanrisk_commit_guard();
"""


class Committer:
    """Inserts and commits rows on one long-lived connection (in the writer process).

    Checking a connection out of the pool per commit (and pinging it) cost more than the insert.
    A failure drops the connection, rolling back its transaction; the next insert reconnects.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows = RowWriter(engine)
        self.shadow_rows = RowWriter(engine, shadow_scores)
        self.connection: PoolProxiedConnection | None = None
        self.checkpointer = Checkpointer(engine) if engine.dialect.name == "sqlite" else None
        self.guarded = engine.dialect.name == "postgresql"
        self.failure: str | None = None  # why the open transaction can no longer commit
        # Seconds since the epoch by which the next commit must land (``deadline`` message).
        self.deadline: float | None = None

    def insert(self, rows: Sequence[Sequence[Any]], writer: RowWriter | None = None) -> None:
        """Insert rows of driver values (:meth:`RowWriter.values`) into the open transaction,
        opening one; a failure dooms the transaction, and its commit reports it. ``writer``:
        the table's (default: ``decisions``)."""
        if self.failure is not None:
            return
        try:
            if self.connection is None:
                self.connection = self._connect()
            (writer or self.rows).insert(self.connection, rows)
        except Exception as exc:  # any database failure means "not audited"
            self.failure = self._drop(exc)

    def commit(self, rows: Sequence[Sequence[Any]] = ()) -> str | None:
        """Insert rows and commit the open transaction; the reason when it was not committed."""
        self.insert(rows)
        deadline, self.deadline = self.deadline, None
        failure, self.failure = self.failure, None
        if failure is not None:
            return failure
        assert self.connection is not None  # insert() connected, or recorded why not
        if deadline is not None and time.time() > deadline:
            # Its requests were answered 503 meanwhile (the inserts waited on the database).
            # PostgreSQL also checks inside COMMIT; SQLite has only this check.
            logger.warning("audit commit past its deadline: rolled back")
            self.abort()
            return "DeadlineExceeded"
        try:
            cursor = self.connection.cursor()
            if self.guarded and deadline is not None:
                cursor.execute(
                    "INSERT INTO pg_temp.loanrisk_commit_deadline VALUES (%s)",
                    (datetime.fromtimestamp(deadline, UTC),),
                )
            elif not rows:
                # An empty commit is the service's probe of the store: it must reach the database
                # (the driver commits nothing when no statement was sent).
                cursor.execute("SELECT 1")
            cursor.close()
            self.connection.commit()
        except Exception as exc:
            return self._drop(exc)
        if self.checkpointer is not None:
            self.checkpointer.wake()
        return None

    def abort(self) -> None:
        """Roll the open transaction back."""
        failure, self.failure = self.failure, None
        if failure is None and self.connection is not None:
            try:
                self.connection.rollback()
            except Exception as exc:
                self._drop(exc)

    def _drop(self, exc: Exception) -> str:
        """Forget the connection after a failure (rolling back what it held); the reason."""
        logger.error("audit write failed: %s", exc)
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.invalidate()  # never hand a broken connection back
        self.connection = None
        return type(exc).__name__

    def _connect(self) -> PoolProxiedConnection:
        connection = self.engine.raw_connection()
        if self.guarded:
            cursor = connection.cursor()
            cursor.execute(_GUARD)
            cursor.close()
            connection.commit()
        if self.checkpointer is not None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
            # A multi-row INSERT into an open transaction keeps a statement journal (to undo just
            # that statement); past 64 KB SQLite spills it to a temporary file: ~130 page writes
            # per 1,000-row batch. In memory it costs a copy.
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.close()
        return connection

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()


class Checkpointer:
    """Copies committed pages from SQLite's write-ahead log into the database, beside the commits.

    Woken after every commit; a wake during a checkpoint starts one more, so wakes coalesce under
    load. PASSIVE checkpoints take no lock the committing connection needs, and once one has
    copied everything, SQLite starts the log over at its next commit, so the log stays bounded.
    Closing runs a final TRUNCATE checkpoint, leaving everything in the database file.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._wanted = threading.Event()
        self._stopping = False
        # SQLite's answer to the last checkpoint: (busy, frames in the log, frames copied).
        self.last_result: tuple[int, int, int] | None = None
        self._thread = threading.Thread(target=self._run, name="audit-checkpoint", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _run(self) -> None:
        connection: PoolProxiedConnection | None = None
        while True:
            self._wanted.wait()
            self._wanted.clear()
            final = self._stopping
            mode = "TRUNCATE" if final else "PASSIVE"
            try:
                if connection is None:
                    connection = self.engine.raw_connection()
                cursor = connection.cursor()
                self.last_result = cursor.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
                cursor.close()
            except Exception as exc:  # the next wake retries; commits do not depend on it
                logger.warning("audit checkpoint failed: %s", exc)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.invalidate()
                connection = None
            if final:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()
                return


def serve(url: str, source: BinaryIO, sink: BinaryIO, timeout_ms: int | None = None) -> None:
    """Commit every message read from ``source`` (after the ``open``), answering each commit on
    ``sink``. ``timeout_ms`` sets the database's own limits (:func:`make_engine`)."""
    committer = Committer(make_engine(url, timeout_ms))
    try:
        while (message := protocol.read_message(source)) is not None:
            kind, rows = message
            if kind == "part":
                committer.insert(rows)
            elif kind == "shadow":
                committer.insert(rows, committer.shadow_rows)
            elif kind == "abort":
                committer.abort()
            elif kind == "deadline":
                committer.deadline = rows
            else:
                sink.write(protocol.reply(committer.commit(rows)))
                sink.flush()
    finally:
        committer.close()


def main() -> None:
    # Ctrl-C in a terminal sends SIGINT to the service and to this process alike. The service
    # shuts down and then ends this process by closing its input (AuditTrail.stop): taking the
    # signal here would only abandon commits under way and print KeyboardInterrupt tracebacks.
    # Until this line (the service.audit package imports, about 0.4 s) SIGINT is still taken.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The service's own format: one JSON object per line on stderr, which the service shares.
    configure_logging("WARNING")
    source = sys.stdin.buffer
    opening = protocol.read_message(source)
    if opening is None:  # the service went before sending anything
        return
    kind, payload = opening
    if kind != "open":
        logger.error("expected the database URL first, got %r", kind)
        raise SystemExit(2)
    # The URL, or the URL and the deadline (ms) the database's own limits follow.
    url, timeout_ms = (payload, None) if isinstance(payload, str) else payload
    try:
        serve(url, source, sys.stdout.buffer, timeout_ms)
    except Exception:  # logged in the one format, not as Python's plain-text traceback
        logger.exception("audit writer stopped")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
