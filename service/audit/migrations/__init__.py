"""The audit schema's versions: Alembic revisions (``versions/``), applied under a lock.

Configured here in code, so no ``alembic.ini`` is needed. The service upgrades at start-up
(:meth:`AuditTrail.start <service.audit.trail.AuditTrail.start>` calls :func:`upgrade`), so any
number of workers or replicas may start at once on an empty database: one creates the table, the
others wait for its lock and find the schema current. :func:`schema_status` says where a database
stands without changing it.

A database made before the schema was versioned (``metadata.create_all``: the ``decisions`` table
and no version) is stamped at the first revision, which creates exactly that table, then upgraded.

The version is kept in ``loanrisk_audit_version`` rather than Alembic's default
``alembic_version``: MLflow keeps its own schema's version in ``alembic_version``, and a
deployment that puts both in one database must not read MLflow's revision as ours.

A new revision (a column, say) goes in ``versions/`` with the next number; to write one::

    from alembic import command
    from service.audit.migrations import alembic_config
    command.revision(alembic_config(), "what it changes", rev_id="0002")
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from service.audit.schema import decisions, make_engine

logger = logging.getLogger("loanrisk.audit")

VERSION_TABLE = "loanrisk_audit_version"
# The revision that creates ``decisions`` as ``metadata.create_all`` did before versioning.
FIRST_REVISION = "0001"
# Any constant will do, as long as it is ours: PostgreSQL's advisory locks are per database.
# (The bytes of "loanrisk" read as a signed 64-bit integer.)
_POSTGRES_LOCK = int.from_bytes(b"loanrisk", "big", signed=True)

# How long a migration waits for another's lock on SQLite (PostgreSQL's advisory lock waits without
# a limit): workers starting at once on a loaded machine take the lock one after another.
MIGRATION_LOCK_WAIT_MS = 60_000

State = Literal["empty", "unversioned", "behind", "current", "ahead"]


class AuditSchemaError(RuntimeError):
    """The audit database's schema cannot be used by this code; the message is one line."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where an audit database's schema stands against this code.

    ``current`` is the database's revision (None when it has none), ``head`` this code's newest.
    ``state``: ``empty`` (no table), ``unversioned`` (the table from before versioning, no
    revision), ``behind`` (an older revision: :func:`upgrade` brings it up), ``current``, or
    ``ahead`` (a revision this code does not know: written by newer code).
    """

    current: str | None
    head: str
    state: State


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the audit schema, built in code; ``connection`` is the one
    migrations run on (``env.py`` takes it from ``config.attributes``)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent))
    config.attributes["connection"] = connection
    return config


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # versions/ holds at least the first revision
    return head


def _status(connection: Connection, head: str) -> SchemaStatus:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    current = context.get_current_revision()
    if current is None:
        exists = inspect(connection).has_table(decisions.name)
        return SchemaStatus(None, head, "unversioned" if exists else "empty")
    if current == head:
        return SchemaStatus(current, head, "current")
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    return SchemaStatus(current, head, "behind" if current in known else "ahead")


def schema_status(url: str) -> SchemaStatus:
    """Where the schema of the audit database at ``url`` stands; changes nothing.

    Raises :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot be reached.
    """
    engine = make_engine(url, sqlite_busy_ms=MIGRATION_LOCK_WAIT_MS, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return _status(connection, _head())
    finally:
        engine.dispose()


def upgrade(url: str) -> SchemaStatus:
    """Bring the audit database at ``url`` to this code's schema, under a lock; its status after.

    Creates the schema in an empty database, stamps one from before versioning, applies newer
    revisions, and does nothing to a current one. Concurrent callers (workers, replicas)
    serialise on the lock (PostgreSQL: a transaction-level advisory lock; SQLite: an exclusive
    transaction) and run in one transaction with it, so each finds the schema as the last one
    left it. Raises :class:`AuditSchemaError` (a one-line reason) when the schema is newer than
    this code or cannot be upgraded.
    """
    head = _head()
    engine = _locking_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK}
                )
            status = _status(connection, head)
            if status.state == "ahead":
                raise AuditSchemaError(
                    f"audit database schema is at revision {status.current}, newer than this "
                    f"code's {head}: run a newer release, or point LOANRISK_AUDIT_DB_URL elsewhere"
                )
            if status.state == "current":
                return status
            config = alembic_config(connection)
            if status.state == "unversioned":
                logger.info("audit schema from before versioning: stamped %s", FIRST_REVISION)
                command.stamp(config, FIRST_REVISION)
            command.upgrade(config, "head")
            logger.info("audit schema upgraded from %s to %s", status.current, head)
            return SchemaStatus(head, head, "current")
    except SQLAlchemyError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise AuditSchemaError(
            f"audit database schema could not be upgraded to {head}: {type(exc).__name__}: {reason}"
        ) from exc
    finally:
        engine.dispose()


def _locking_engine(url: str) -> Engine:
    """An engine for one migration; on SQLite its transactions begin EXCLUSIVE.

    The driver (pysqlite) would begin a transaction only before data changes, and not
    exclusively: it is told to leave transactions alone, and SQLAlchemy's begin emits the
    statement (SQLAlchemy's documented recipe).
    """
    engine = make_engine(url, sqlite_busy_ms=MIGRATION_LOCK_WAIT_MS, poolclass=NullPool)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _leave_transactions_alone(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_exclusive(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN EXCLUSIVE")

    return engine
