"""The audit writer process: commits groups of decision records sent by the service.

Started by :class:`service.audit.AuditTrail` as ``python -m service.audit_writer URL``. Reads
messages from stdin (a 4-byte big-endian length, then a JSON array of decision rows), inserts and
commits each message in one transaction, and answers one line per message on stdout: ``ok``, or
the name of the error that prevented the commit. Exits when stdin ends.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import BinaryIO

from pydantic_core import from_json

from service.audit import Committer, make_engine


def serve(url: str, source: BinaryIO, sink: BinaryIO) -> None:
    """Commit every message read from ``source``, answering each on ``sink``."""
    committer = Committer(make_engine(url))
    try:
        while header := source.read(4):
            message = source.read(int.from_bytes(header, "big"))
            rows = from_json(message)
            for row in rows:
                row["created_at"] = datetime.fromisoformat(row["created_at"])
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
