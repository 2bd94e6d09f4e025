"""The ``decisions`` table and the audit database's engine.

The table's definition here is what the code reads and writes; its life in a database (creation,
later columns) is Alembic's (:mod:`service.audit.migrations`), so a change here comes with a
revision there.
"""

from __future__ import annotations

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
)

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # First, so that the pragmas below wait for a lock rather than fail: switching a new
    # database to WAL takes an exclusive lock, which several workers starting at once contend
    # for.
    cursor.execute("PRAGMA busy_timeout=5000")
    # WAL lets readers (GET /v1/decisions) run beside the writer; FULL keeps commits durable.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def make_engine(url: str, **options: Any) -> Engine:
    """The audit database's engine: JSON through pydantic-core, SQLite in WAL with full sync.

    ``options`` go to :func:`sqlalchemy.create_engine` as they are.
    """
    engine = create_engine(
        url,
        pool_pre_ping=True,
        json_serializer=lambda value: to_json(value).decode(),
        **options,
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine
