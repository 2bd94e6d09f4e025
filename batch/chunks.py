"""A chunk of applicants, as Arrow columns, checked and scored: the core of file and Spark scoring.

A row becomes the JSON body a client would send for that applicant, by these rules (documented in
docs/scoring-files.md), and then gets the service's answer to that body:

- only the model's input columns are read; every other column is ignored;
- a null cell (an empty CSV field or one of Arrow's null markers such as ``NA``) or a NaN is an
  omitted field;
- a numeric field holding text (every CSV field is text) is a number when Arrow's float parser
  reads it, and is otherwise sent as the text (which the service refuses); booleans are sent as
  booleans (refused too);
- a categorical field is its text (a number in a Parquet column of a categorical field becomes its
  decimal text, as it would be in a CSV).

Checking 65,536 rows through the service's validator one JSON body at a time costs about a second;
the checks are therefore made on whole columns with NumPy and Arrow, and only the rows they flag go
through the service's validator, whose message is the one written. A flagged row the validator
accepts is scored. tests/batch/test_chunks.py holds the column checks to the validator's verdict
row by row on valid and invalid rows of every kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic_core import to_json
from threadpoolctl import threadpool_limits

from batch.service_path import ServicePath
from models.contract import FeatureSpec

# The service's limit on a category's length (service.schemas.MAX_CATEGORY_LENGTH), checked here
# on whole columns; the validator has the last word on flagged rows.
MAX_CATEGORY_LENGTH = 200

RESULT_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("probability_of_default", pa.float64()),
    ("score", pa.float64()),
    ("risk_band", pa.string()),
    ("decision", pa.string()),
    ("reason_codes", pa.string()),  # the JSON array POST /v1/score answers
    ("model_name", pa.string()),
    ("model_version", pa.string()),
]
REJECT_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("error", pa.string()),  # the service's 422 message: "Income: Input should be ..."
    ("details", pa.string()),  # its details, as JSON: every invalid field
]
ROW_COLUMN = "row"  # 0-based position of the row in the input file


@dataclass(frozen=True)
class Checked:
    """A chunk's contract fields as the service would receive them, and the rows it refuses."""

    numeric: dict[str, np.ndarray]  # float64, NaN where the field is omitted
    unreadable: dict[str, dict[int, Any]]  # per numeric field: row -> the value, not a number
    categorical: dict[str, pa.Array | pa.ChunkedArray]  # string, null where omitted
    flagged: np.ndarray  # bool: rows a column check refuses

    def body(self, row: int) -> dict[str, Any]:
        """The JSON body of one row, as a client would send it (omitted fields left out)."""
        body: dict[str, Any] = {}
        for name, values in self.numeric.items():
            value = self.unreadable[name].get(row, values[row].item())
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            body[name] = value
        for name, texts in self.categorical.items():
            text = texts[row].as_py()
            if text is not None:
                body[name] = text
        return body


def check_columns(batch: pa.RecordBatch | pa.Table, specs: Sequence[FeatureSpec]) -> Checked:
    """Read a chunk's contract fields and flag the rows the service's validation would refuse.

    Raises ``KeyError`` for a required field the chunk lacks (callers check the header first).
    """
    rows = batch.num_rows
    flagged = np.zeros(rows, dtype=bool)
    numeric: dict[str, np.ndarray] = {}
    unreadables: dict[str, dict[int, Any]] = {}
    categorical: dict[str, pa.Array | pa.ChunkedArray] = {}
    names = batch.schema.names
    for spec in specs:
        column = batch.column(spec.name) if spec.name in names else pa.nulls(rows)
        if spec.kind == "numeric":
            values, raw, unreadable = _numbers(column)
            missing = np.isnan(values) & ~unreadable
            bad = unreadable | np.isinf(values)
            if not spec.nullable:
                bad |= missing
            with np.errstate(invalid="ignore"):
                if spec.minimum is not None:
                    bad |= values < spec.minimum
                if spec.exclusive_minimum is not None:
                    bad |= values <= spec.exclusive_minimum
                if spec.maximum is not None:
                    bad |= values > spec.maximum
            flagged |= bad
            numeric[spec.name] = values
            unreadables[spec.name] = (
                {row: raw[row] for row in np.flatnonzero(unreadable).tolist()} if raw else {}
            )
        else:
            text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
            lengths = pc.utf8_length(text).to_numpy(zero_copy_only=False)  # NaN where null
            missing = np.isnan(lengths)
            with np.errstate(invalid="ignore"):
                bad = (lengths < 1) | (lengths > MAX_CATEGORY_LENGTH)
            if not spec.nullable:
                bad |= missing
            flagged |= bad
            categorical[spec.name] = text
    return Checked(numeric, unreadables, categorical, flagged)


def _numbers(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[Any] | None, np.ndarray]:
    """float64 values (NaN where null), the raw values when some are not numbers, and where."""
    kind = column.type
    rows = len(column)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        return values, None, np.zeros(rows, dtype=bool)
    if pa.types.is_null(kind):
        return np.full(rows, np.nan), None, np.zeros(rows, dtype=bool)
    if pa.types.is_boolean(kind):  # the service takes no booleans for numbers
        present = column.is_valid().to_numpy(zero_copy_only=False)
        return np.full(rows, np.nan), column.to_pylist(), present
    text = column if pa.types.is_string(kind) else pc.cast(column, pa.string())
    try:
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        return values, None, np.zeros(rows, dtype=bool)
    except pa.ArrowInvalid:
        pass
    # Some text is not a number: find it by halving (k bad values among n cost about k·log n
    # casts, all by Arrow's own parser, so a value reads the same in a clean chunk and a dirty one).
    values = np.full(rows, np.nan)
    unreadable = np.zeros(rows, dtype=bool)
    pending = [(0, rows)]
    while pending:
        start, stop = pending.pop()
        part = text.slice(start, stop - start)
        try:
            values[start:stop] = pc.cast(part, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            if stop - start == 1:
                unreadable[start] = True
            else:
                middle = (start + stop) // 2
                pending += [(start, middle), (middle, stop)]
    return values, text.to_pylist(), unreadable


class ScoringInputError(ValueError):
    """The job cannot go on: unknown file format, missing file or column, unusable model, or a
    column none of whose values the model knows."""


# A chunk with at least this many values in a categorical column, none of them a category the
# model learnt, is another encoding of the field (codes for text, say), not unseen categories:
# every applicant would quietly get the unknown-category treatment (a Parquet book with `Home` as
# integers changed 26 of 200 decisions).
MIN_VALUES_FOR_UNKNOWN_COLUMN = 50


class ChunkScorer:
    """Scores chunks of applicants with one model: scored rows and rejected rows, as Arrow tables.

    ``id_columns`` are carried through to both; ``reasons`` is the number of reason codes.
    """

    def __init__(
        self,
        path: ServicePath,
        model_name: str,
        model_version: str,
        id_columns: Sequence[str] = (),
        row_numbers: bool = True,
    ) -> None:
        self.path = path
        self.model_name = model_name
        self.model_version = model_version
        self.id_columns = list(id_columns)
        self.row_numbers = row_numbers
        self._specs = list(path.contract.features)
        self._names = [spec.name for spec in self._specs]
        preprocessor = path.model.preprocessor
        self._read_category = preprocessor.read_category
        self._known = {c.name: set(c.categories) for c in preprocessor.categorical}

    def output_schema(self, ids: pa.Schema) -> pa.Schema:
        """Scored rows: [row], the id columns as in ``ids``, then :data:`RESULT_COLUMNS`."""
        return pa.schema(self._keys(ids) + RESULT_COLUMNS)

    def rejects_schema(self, ids: pa.Schema) -> pa.Schema:
        """Rejected rows: [row], the id columns as in ``ids``, then :data:`REJECT_COLUMNS`."""
        return pa.schema(self._keys(ids) + REJECT_COLUMNS)

    def _keys(self, ids: pa.Schema) -> list[tuple[str, pa.DataType]]:
        keys = [(ROW_COLUMN, pa.int64())] if self.row_numbers else []
        return keys + [(name, ids.field(name).type) for name in self.id_columns]

    def score(self, batch: pa.RecordBatch, first_row: int = 0) -> tuple[pa.Table, pa.Table]:
        """(scored rows, rejected rows) of one chunk whose first row is ``first_row`` of the input.

        Raises ``KeyError`` for an id column the chunk lacks.
        """
        # One BLAS thread per Python thread: the chunk's work is shared between this thread and
        # the service path's helper instead. With OpenBLAS's own threads on the shared two cores
        # a 131,072-row file scored at ~14,600 rows/s; with one, ~43,800 (no reasons).
        with threadpool_limits(limits=1, user_api="blas"):
            return self._score(batch, first_row)

    def _score(self, batch: pa.RecordBatch, first_row: int) -> tuple[pa.Table, pa.Table]:
        checked = check_columns(batch, self._specs)
        rejected_at: list[int] = []
        errors: list[str] = []
        details: list[str] = []
        for row in np.flatnonzero(checked.flagged).tolist():
            rejection = self.path.rejection(checked.body(row))
            if rejection is not None:
                rejected_at.append(row)
                errors.append(rejection[0])
                details.append(to_json(rejection[1]).decode())
        keep = np.ones(batch.num_rows, dtype=bool)
        keep[rejected_at] = False
        kept = np.flatnonzero(keep)
        ids = pa.schema([batch.schema.field(name) for name in self.id_columns])
        count = len(kept)
        if count:
            columns = self._columns(checked, keep, count == batch.num_rows)
            probabilities, reasons, scores, bands, decisions = self.path.assess_columns(columns)
        else:
            probabilities, reasons, scores, bands, decisions = (
                np.empty(0),
                pa.array([], pa.string()),
                [],
                [],
                [],
            )
        scored = pa.Table.from_arrays(
            [
                *self._key_arrays(batch, kept, first_row),
                pa.array(probabilities, pa.float64()),
                pa.array(scores, pa.float64()),
                pa.array(bands, pa.string()),
                pa.array(decisions, pa.string()),
                reasons,
                pa.repeat(pa.scalar(self.model_name, pa.string()), count),
                pa.repeat(pa.scalar(self.model_version, pa.string()), count),
            ],
            schema=self.output_schema(ids),
        )
        at = np.asarray(rejected_at, dtype=np.int64)
        rejects = pa.Table.from_arrays(
            [
                *self._key_arrays(batch, at, first_row),
                pa.array(errors, pa.string()),
                pa.array(details, pa.string()),
            ],
            schema=self.rejects_schema(ids),
        )
        return scored, rejects

    def _key_arrays(self, batch: pa.RecordBatch, rows: np.ndarray, first_row: int) -> list[Any]:
        keys: list[Any] = [pa.array(rows + first_row, pa.int64())] if self.row_numbers else []
        return keys + [batch.column(name).take(rows) for name in self.id_columns]

    def _columns(
        self, checked: Checked, keep: np.ndarray, everyone: bool
    ) -> dict[str, np.ndarray | pd.Categorical]:
        """The kept rows column by column, as the model's columnar path takes them: float64
        (NaN where omitted) per number, a ``pd.Categorical`` per category (the values the
        service's validator would pass on: the text, or missing)."""
        columns: dict[str, np.ndarray | pd.Categorical] = {}
        mask = None if everyone else pa.array(keep)
        for spec in self._specs:
            if spec.kind == "numeric":
                values = checked.numeric[spec.name]
                columns[spec.name] = values if everyone else values[keep]
            else:
                text = checked.categorical[spec.name]
                if mask is not None:
                    text = text.filter(mask)
                columns[spec.name] = _categorical(text)
                self._require_known(spec.name, columns[spec.name])
        return columns

    def _require_known(self, name: str, column: pd.Categorical) -> None:
        """Raise :class:`ScoringInputError` when a chunk's ``name`` column has at least
        :data:`MIN_VALUES_FOR_UNKNOWN_COLUMN` values and not one is a category the model learnt."""
        known = self._known.get(name)
        present = int((column.codes >= 0).sum())
        if not known or present < MIN_VALUES_FOR_UNKNOWN_COLUMN:
            return
        values = column.categories.tolist()
        if any(self._read_category(v) in known for v in values):
            return
        raise ScoringInputError(
            f"column {name!r}: none of its {present:,} values in this chunk is a category the "
            f"model learnt (it has {', '.join(map(repr, values[:5]))}; the model knows "
            f"{', '.join(map(repr, sorted(known)[:8]))}): is it encoded differently?"
        )


def _categorical(text: pa.Array | pa.ChunkedArray) -> pd.Categorical:
    """A string column as a ``pd.Categorical``: each distinct text once, nulls missing."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    encoded = pc.dictionary_encode(text)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    categories = pd.Index(encoded.dictionary.to_pylist(), dtype=object)
    return pd.Categorical.from_codes(codes, categories=categories)
