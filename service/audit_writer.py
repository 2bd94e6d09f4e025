"""The audit writer process: commits groups of decision records sent by the service.

Started by :class:`service.audit.AuditTrail` as ``python -m service.audit_writer URL``. Reads
messages from stdin: a 4-byte big-endian length, then a pickled ``(kind, rows)``, the rows being
driver values in column order as ``RowWriter.values`` makes them (only the service that started
this process can write to its stdin). A ``commit`` message's rows are inserted and the transaction
committed, and one line answers it on stdout: ``ok``, or the name of the error that prevented the
commit. A ``part``'s rows are inserted into the open transaction without an answer (a large batch
sent ahead of its commit); ``abort`` rolls the open transaction back. Exits when stdin ends.

On SQLite, committed pages are copied from the write-ahead log into the database file (a
checkpoint) by a thread of this process rather than by the commit that happens to cross SQLite's
threshold: that commit took about four times as long (a 1,000-row group: ~10 ms against ~2.5 ms).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import sys
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO

from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

from service.audit import RowWriter, make_engine

logger = logging.getLogger("loanrisk.audit")


class Committer:
    """Inserts and commits rows on one long-lived connection (in the writer process).

    Checking a connection out of the pool per commit (and pinging it) cost more than the insert.
    A failure drops the connection, rolling back its transaction; the next insert reconnects.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows = RowWriter(engine)
        self.connection: PoolProxiedConnection | None = None
        self.checkpointer = Checkpointer(engine) if engine.dialect.name == "sqlite" else None
        self.failure: str | None = None  # why the open transaction can no longer commit

    def insert(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows of driver values (:meth:`RowWriter.values`) into the open transaction,
        opening one; a failure dooms the transaction, and its commit reports it."""
        if self.failure is not None:
            return
        try:
            if self.connection is None:
                self.connection = self._connect()
            self.rows.insert(self.connection, rows)
        except Exception as exc:  # any database failure means "not audited"
            self.failure = self._drop(exc)

    def commit(self, rows: Sequence[Sequence[Any]] = ()) -> str | None:
        """Insert rows and commit the open transaction; the reason when it was not committed."""
        self.insert(rows)
        failure, self.failure = self.failure, None
        if failure is not None:
            return failure
        assert self.connection is not None  # insert() connected, or recorded why not
        try:
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


def serve(url: str, source: BinaryIO, sink: BinaryIO) -> None:
    """Commit every message read from ``source``, answering each on ``sink``."""
    committer = Committer(make_engine(url))
    try:
        while header := source.read(4):
            kind, rows = pickle.loads(source.read(int.from_bytes(header, "big")))
            if kind == "part":
                committer.insert(rows)
            elif kind == "abort":
                committer.abort()
            else:
                failure = committer.commit(rows)
                sink.write(b"ok\n" if failure is None else f"{failure}\n".encode())
                sink.flush()
    finally:
        committer.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s audit-writer %(message)s")
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
