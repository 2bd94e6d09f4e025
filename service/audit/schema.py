"""The audit database's tables and its engine.

``decisions`` holds every answer; ``outcomes`` what became of a decided loan (one row per decision
id, the latest word), ``outcome_corrections`` each change to an outcome (its history), and
``shadow_scores`` what a challenger scored for a decision the champion made (filled by the service
when it scores in the shadow; the monitor's ``--compare`` reads it).

The table's definition here is what the code reads and writes; its life in a database (creation,
later columns) is Alembic's (:mod:`service.audit.migrations`), so a change here comes with a
revision there.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from pydantic_core import to_json
from sqlalchemy import (
    JSON,
    Boolean,
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
)
from sqlalchemy.engine import make_url

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
    # The decision policy's thresholds that decided (shared by a request's rows) and the name of
    # the API key that asked (None when the service ran open). Both from revision 0003: older
    # rows hold NULL.
    Column("policy", JSON, nullable=True),
    Column("api_key_name", String(100), nullable=True),
)
# One row per decided applicant whose outcome is known: the latest word. ``request_id`` is one
# applicant's decision id (a batch's applicants each have theirs). Not a foreign key: decisions are
# inserted by the writer process, and an outcome for an unknown id is refused by the code
# (service.outcomes), which reports it rather than failing.
outcomes = Table(
    "outcomes",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("defaulted", Boolean, nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("source", String(20), nullable=False),  # "api" or "import"
    Column("corrections", Integer, nullable=False),  # how many times it was changed
)
# Every change to an outcome: what it was, what it became, when and through which channel.
outcome_corrections = Table(
    "outcome_corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("previous_defaulted", Boolean, nullable=False),
    Column("previous_observed_at", DateTime(timezone=True), nullable=False),
    Column("defaulted", Boolean, nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    Column("corrected_at", DateTime(timezone=True), nullable=False),
    Column("source", String(20), nullable=False),
)
# A challenger's answer for a decision the champion made (the decision itself stays the
# champion's): one row per decision id and challenger version.
shadow_scores = Table(
    "shadow_scores",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("model_name", String(200), primary_key=True),
    Column("model_version", String(50), primary_key=True),
    Column("alias", String(50), nullable=True),
    Column("probability_of_default", Float, nullable=False),
    Column("decision", String(20), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_timeout_ms: int = 5000) -> None:
    cursor = dbapi_connection.cursor()
    # First, so that the pragmas below wait for a lock rather than fail: switching a new
    # database to WAL takes an exclusive lock, which several workers starting at once contend
    # for.
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    # WAL lets readers (GET /v1/decisions) run beside the writer; FULL keeps commits durable.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


# The database's own limits are this share of the service's deadline, so that a database that
# still answers (a lock held, a slow disk) fails the statement itself and the writer reports why,
# before the service gives up on the commit and must abandon the writer process.
SERVER_SHARE = 0.8


def server_limit_ms(timeout_ms: int) -> int:
    """The database's own statement and lock limits (ms) under a service deadline of
    ``timeout_ms``."""
    return max(1, int(timeout_ms * SERVER_SHARE))


def postgresql_limits(url: str, timeout_ms: int | None) -> dict[str, Any]:
    """libpq connection arguments setting the database's own limits under the service's
    deadline (empty for other databases, or without a deadline)."""
    parsed = make_url(url)
    if timeout_ms is None or parsed.get_backend_name() != "postgresql":
        return {}
    limit = server_limit_ms(timeout_ms)
    # Connection arguments replace the URL's own ``options`` (e.g. a search_path): kept first.
    given = parsed.query.get("options", ())
    limits = f"-c statement_timeout={limit} -c lock_timeout={limit}"
    return {
        "options": " ".join([*([given] if isinstance(given, str) else given), limits]),
        "connect_timeout": max(2, math.ceil(timeout_ms / 1000)),  # whole seconds, 2 at least
    }


def make_engine(
    url: str, timeout_ms: int | None = None, sqlite_busy_ms: int = 5000, **options: Any
) -> Engine:
    """The audit database's engine: JSON through pydantic-core, SQLite in WAL with full sync.

    With ``timeout_ms`` (the service's audit deadline, ``LOANRISK_AUDIT_TIMEOUT_MS``) every
    connection carries the database's own limits at :func:`server_limit_ms` of it: PostgreSQL's
    ``statement_timeout`` and ``lock_timeout`` (and libpq's ``connect_timeout``, whole seconds, at
    least 2), SQLite's ``busy_timeout``. Without it SQLite waits ``sqlite_busy_ms`` for a lock and
    PostgreSQL has no limit (migrations). ``options`` go to :func:`sqlalchemy.create_engine`.
    """
    connect_args = {**postgresql_limits(url, timeout_ms), **options.pop("connect_args", {})}
    engine = create_engine(
        url,
        pool_pre_ping=True,
        json_serializer=lambda value: to_json(value).decode(),
        connect_args=connect_args,
        **options,
    )
    if engine.dialect.name == "sqlite":
        busy = sqlite_busy_ms if timeout_ms is None else server_limit_ms(timeout_ms)
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_timeout_ms=busy))
    return engine
