"""Alembic's environment for the audit schema: runs on the connection :func:`upgrade` passes.

Configured in code (:func:`service.audit.migrations.alembic_config`); there is no offline (SQL
script) mode.
"""

from alembic import context

from service.audit.migrations import VERSION_TABLE
from service.audit.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("audit migrations run on a connection given by service.audit.migrations")
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
