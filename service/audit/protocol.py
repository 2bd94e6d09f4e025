"""The messages between the service (:mod:`service.audit.trail`) and its writer process
(:mod:`service.audit.writer`), both directions.

To the writer, on its stdin: messages of a 4-byte big-endian length, then a pickled
``(kind, payload)``. The first is ``open``, its payload the database URL (on the pipe rather than
the command line, where every local user could read its password with ``ps``). Then:

- ``part``: rows (driver values in column order, as :meth:`RowWriter.values` makes them) to insert
  into the open transaction, without an answer: a large batch sent ahead of its commit;
- ``shadow``: rows of ``shadow_scores`` (a challenger's scores of the decisions that follow) to
  insert into the open transaction, without an answer: sent just before the ``commit`` of their
  decisions, so both are committed together;
- ``commit``: rows to insert, then the transaction is committed and answered;
- ``abort``: the open transaction is rolled back, without an answer;
- ``deadline``: seconds since the epoch (the service's clock) by which the next commit must land,
  without an answer; past it, the database itself refuses the commit (PostgreSQL).

The ``open`` payload may also be ``(url, timeout_ms)``: the database's own statement and lock
limits then follow the service's audit deadline.

Pickle is safe here: only the service that started the writer can write to its stdin.

From the writer, on its stdout: one line per ``commit``, ``ok`` or the name of the error that
prevented the commit. End of input ends the writer; end of its output means it has exited.
"""

from __future__ import annotations

import pickle
from typing import Any, BinaryIO, Literal

Kind = Literal["open", "part", "shadow", "commit", "abort", "deadline"]

OK = b"ok\n"


def message(kind: Kind, payload: Any) -> bytes:
    """One message for the writer process: its length, then the pickled kind and payload."""
    body = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    return len(body).to_bytes(4, "big") + body


def read_message(source: BinaryIO) -> tuple[Kind, Any] | None:
    """The next message from ``source``: ``(kind, payload)``, or None at the end of input."""
    header = source.read(4)
    if not header:
        return None
    kind, payload = pickle.loads(source.read(int.from_bytes(header, "big")))
    return kind, payload


def reply(failure: str | None) -> bytes:
    """The writer's answer to a ``commit``: ``ok``, or why it was not committed."""
    return OK if failure is None else f"{failure}\n".encode()


def failure_of(line: bytes) -> str | None:
    """What a reply line says: None once committed, else why not (a non-empty line)."""
    return None if line == OK else line.decode().strip()
