"""Decision records as the service builds them, and as driver values for the writer process.

The service converts rows to driver values (:meth:`RowWriter.values`, on the event loop); the
writer process inserts them (:meth:`RowWriter.insert`). Both sides build a ``RowWriter`` from
the same engine URL, so they agree on the column order.
"""

from __future__ import annotations

import itertools
import operator
import sqlite3
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Table
from sqlalchemy.pool import PoolProxiedConnection

from service.audit.schema import decisions


class JSONText(str):
    """A value for a JSON column that is JSON text already: stored as it is, not serialised."""


class JSONTextColumn(list[str]):
    """Values of a JSON column (in :class:`DecisionColumns`) that are JSON text already."""


@dataclass(frozen=True)
class DecisionColumns:
    """``count`` decision rows given column by column: ``columns`` holds a sequence of one value
    per row, ``shared`` one value for every row (a request's timestamp, model, batch id).

    A large batch's rows are built this way: no dict per row, and shared values converted once.
    """

    count: int
    columns: MutableMapping[str, Sequence[Any]]
    shared: Mapping[str, Any]


# What a group or a part of one holds: row dicts (every column of ``decisions``) or columns.
DecisionRows = Sequence[dict[str, Any]] | DecisionColumns


def _passing_json_text(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def process(value: Any) -> Any:
        # As a plain str: a str subclass pickles ~50 times slower on its way to the writer.
        return str(value) if value.__class__ is JSONText else processor(value)

    return process


class RowWriter:
    """Turns row dicts into driver values and inserts them with one multi-row statement.

    Values are converted by the columns' own SQLAlchemy bind processors (JSON text, SQLite's
    datetime text), so SQLAlchemy reads the rows back as if it had written them. One statement per
    group matters: SQLite's ``executemany`` gives up and retakes Python's GIL for every row, and
    while the event loop is busy each of those is a thread switch; other drivers would make a
    round trip per row.
    """

    def __init__(self, engine: Engine, table: Table = decisions) -> None:
        """Rows of ``table``: ``decisions``, or ``shadow_scores`` (a challenger's scores)."""
        dialect = engine.dialect
        columns = list(table.columns)
        self.names = [column.name for column in columns]
        self._in_column_order = operator.itemgetter(*self.names)
        # (column index, processor, whether records share its values: a request's timestamp)
        self.processors = [
            (
                index,
                _passing_json_text(processor) if isinstance(column.type, JSON) else processor,
                isinstance(column.type, DateTime),
            )
            for index, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]
        placeholder = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if placeholder is None:
            raise ValueError(
                f"audit database driver {dialect.driver!r} uses the {dialect.paramstyle!r} "
                "parameter style; supported drivers use qmark, format or pyformat "
                "(sqlite3, psycopg2, pymysql)"
            )
        self._processor_of = {
            self.names[index]: processor for index, processor, _ in self.processors
        }
        self.head = f"INSERT INTO {table.name} ({', '.join(self.names)}) VALUES "
        self.one_row = "(" + ", ".join([placeholder] * len(self.names)) + ")"
        # SQLite before 3.32 allows 999 parameters per statement.
        legacy_sqlite = dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 32)
        self.rows_per_statement = 999 // len(self.names) if legacy_sqlite else 1000

    def values(self, records: DecisionRows) -> list[tuple[Any, ...]]:
        """Decision records (dicts holding every column, or :class:`DecisionColumns`) as driver
        values in column order.

        Column by column, so the loops run in C: a record becomes a tuple through ``itemgetter``,
        the tuples are transposed into columns, each converted column maps its processor, and
        the columns are zipped back. An object shared by many records (a request's timestamp) is
        converted once.
        """
        if isinstance(records, DecisionColumns):
            return self._values_of_columns(records)
        if not records:
            return []
        columns = list(zip(*map(self._in_column_order, records), strict=True))
        for index, processor, shared in self.processors:
            column = columns[index]
            if not shared:
                columns[index] = tuple(map(processor, column))
                continue
            converted: dict[int, Any] = {}
            for value in column:
                if id(value) not in converted:
                    converted[id(value)] = processor(value)
            columns[index] = tuple(converted[id(value)] for value in column)
        return list(zip(*columns, strict=True))

    def _values_of_columns(self, rows: DecisionColumns) -> list[tuple[Any, ...]]:
        missing = set(self.names).difference(rows.columns, rows.shared)
        if missing:
            raise ValueError(f"decision columns missing: {', '.join(sorted(missing))}")
        columns: list[Iterable[Any]] = []
        for name in self.names:
            processor = self._processor_of.get(name)
            if name in rows.shared:
                value = rows.shared[name]
                converted = value if processor is None else processor(value)
                columns.append(itertools.repeat(converted, rows.count))
                continue
            column: Iterable[Any] = rows.columns[name]
            if processor is not None and not isinstance(column, JSONTextColumn):
                column = map(processor, column)
            columns.append(column)
        return list(zip(*columns, strict=True))

    def insert(self, connection: PoolProxiedConnection, rows: Sequence[Sequence[Any]]) -> None:
        cursor = connection.cursor()
        step = self.rows_per_statement
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            cursor.execute(
                self.head + ", ".join([self.one_row] * len(chunk)),
                list(itertools.chain.from_iterable(chunk)),
            )
        cursor.close()
