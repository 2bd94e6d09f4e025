"""The decision audit trail: every answer is committed to the database before it is sent.

- :mod:`~service.audit.schema`: the ``decisions`` table and the database's engine;
- :mod:`~service.audit.migrations`: the table's life in a database (Alembic revisions, upgraded
  under a lock at start-up or by ``upgrade(url)``);
- :mod:`~service.audit.rows`: decision records as the service builds them (row dicts or
  columns) and as driver values;
- :mod:`~service.audit.trail`: :class:`AuditTrail`, the group commit on the service's event loop;
- :mod:`~service.audit.protocol`: the messages between the service and its writer process;
- :mod:`~service.audit.writer`: the writer process (``python -m service.audit.writer``).
"""

from service.audit.rows import DecisionColumns, DecisionRows, JSONText, JSONTextColumn
from service.audit.schema import decisions, make_engine
from service.audit.trail import AuditTrail, AuditUnavailable

__all__ = [
    "AuditTrail",
    "AuditUnavailable",
    "DecisionColumns",
    "DecisionRows",
    "JSONText",
    "JSONTextColumn",
    "decisions",
    "make_engine",
]
