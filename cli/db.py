"""``loanrisk db upgrade`` and ``loanrisk db status``: the audit database's schema version.

The service upgrades the schema itself at start-up, under a lock; these commands let an operator
do it ahead of a deployment, or check where a database stands.
"""

from __future__ import annotations

import typer

from cli.console import fail

db_app = typer.Typer(
    help="The decision audit database's schema (Alembic migrations).", no_args_is_help=True
)


def _audit_url() -> str:
    from service.config import Settings

    return Settings().audit_db_url


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
