"""The audit writer process: commits groups of decision records sent by the service.

Started by :class:`service.audit.AuditTrail` as ``python -m service.audit_writer URL``. Reads
messages from stdin (a 4-byte big-endian length, then a JSON array of rows of driver values in
column order, as ``RowWriter.values`` makes them), inserts and commits each message in one
transaction, and answers one line per message on stdout: ``ok``, or the name of the error that
prevented the commit. Exits when stdin ends.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, BinaryIO

from pydantic_core import from_json
from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

from service.audit import RowWriter, make_engine

logger = logging.getLogger("loanrisk.audit")


class Committer:
    """Inserts and commits groups of rows on one long-lived connection (in the writer process).

    Checking a connection out of the pool per commit (and pinging it) cost more than the insert.
    A failed commit drops the connection; the next one reconnects.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows = RowWriter(engine)
        self.connection: PoolProxiedConnection | None = None

    def commit(self, rows: list[list[Any]]) -> str | None:
        """Insert and commit rows of driver values (:meth:`RowWriter.values`); the reason when
        they were not committed."""
        try:
            if self.connection is None:
                self.connection = self.engine.raw_connection()
            self.rows.insert(self.connection, rows)
            self.connection.commit()
            return None
        except Exception as exc:  # any database failure means "not audited"
            logger.error("audit write failed for %d records: %s", len(rows), exc)
            if self.connection is not None:
                with contextlib.suppress(Exception):
                    self.connection.invalidate()  # never hand a broken connection back
            self.connection = None
            return type(exc).__name__

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None
        self.engine.dispose()


def serve(url: str, source: BinaryIO, sink: BinaryIO) -> None:
    """Commit every message read from ``source``, answering each on ``sink``."""
    committer = Committer(make_engine(url))
    try:
        while header := source.read(4):
            failure = committer.commit(from_json(source.read(int.from_bytes(header, "big"))))
            sink.write(b"ok\n" if failure is None else f"{failure}\n".encode())
            sink.flush()
    finally:
        committer.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s audit-writer %(message)s")
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
