"""The audit writer process: commits groups of decision records sent by the service.

Started by :class:`service.audit.AuditTrail` as ``python -m service.audit_writer URL``. Reads
messages from stdin (a 4-byte big-endian length, then a JSON array of rows of driver values in
column order, as ``_RowWriter.values`` makes them), inserts and commits each message in one
transaction, and answers one line per message on stdout: ``ok``, or the name of the error that
prevented the commit. Exits when stdin ends.
"""

from __future__ import annotations

import logging
import sys
from typing import BinaryIO

from pydantic_core import from_json

from service.audit import Committer, make_engine


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
