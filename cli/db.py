"""``loanrisk db upgrade`` and ``loanrisk db status``: the audit database's schema version.

The service upgrades the schema itself at start-up, under a lock; these commands let an operator
do it ahead of a deployment, or check where a database stands.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.console import fail

db_app = typer.Typer(
    help="The decision audit database's schema (Alembic migrations).", no_args_is_help=True
)


def _audit_url() -> str:
    from service.config import Settings

    return Settings().audit_db_url


def existing_audit_url() -> str:
    """The audit database's URL (LOANRISK_AUDIT_DB_URL) for a command that reads the store the
    service keeps; raises the exit (2, one line naming the absolute path and the setting) when
    it names a SQLite file that does not exist.

    SQLite creates a missing file on connecting, so a relative URL (the default,
    ``sqlite:///loanrisk-audit.db``) read from another directory would give an empty store and
    report every id unknown. In-memory databases and SQLite ``file:`` URIs (``?uri=true``) are
    passed as they are; so is every other database (a server reports its own errors).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = _audit_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # the engine reports it
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or parsed.query.get("uri")
    ):
        return url
    path = Path(database).resolve()
    if not path.exists():
        raise fail(
            f"the audit database {path} does not exist (LOANRISK_AUDIT_DB_URL={url}); "
            "point LOANRISK_AUDIT_DB_URL at the service's audit store"
        )
    return url


@db_app.command()
def upgrade() -> None:
    """Bring the audit database (LOANRISK_AUDIT_DB_URL) to this code's schema version."""
    from service.audit.migrations import AuditSchemaError
    from service.audit.migrations import upgrade as upgrade_schema

    try:
        status = upgrade_schema(_audit_url())
    except AuditSchemaError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"audit schema at revision {status.current} (this code's head: {status.head})")


@db_app.command()
def status() -> None:
    """Say where the audit database's schema stands against this code; exit 1 unless current."""
    from service.audit.migrations import AuditSchemaError, schema_status

    try:
        found = schema_status(_audit_url())
    except AuditSchemaError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"audit schema: {found.state} (revision {found.current}, head {found.head})")
    if found.state != "current":
        raise typer.Exit(1)
