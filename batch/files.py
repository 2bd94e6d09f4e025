"""Scoring a file of applicants in bounded memory: CSV or Parquet in, Parquet or CSV out.

The input is read a chunk at a time (Parquet row batches of the needed columns only; CSV through
Arrow's streaming reader), each chunk is checked and scored (:mod:`batch.chunks`) and appended to
the output and rejects files, which are written under temporary names beside their destinations
and renamed into place only when the whole input has been read: a failed run leaves no half file.
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from batch.chunks import ChunkScorer, ScoringInputError
from batch.service_path import ServicePath
from models.contract import FeatureContract

DEFAULT_CHUNK_ROWS = 65_536
# Arrow's CSV reader takes a block size in bytes; a loan row of ~15 fields is ~100 bytes.
CSV_BYTES_PER_ROW = 128
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


# How many of a file's columns an error message lists.
SHOWN_COLUMNS = 20


def require_inputs(
    contract: FeatureContract, columns: Sequence[str], source: str, model: str
) -> None:
    """Refuse a book that lacks a column for any of the model's inputs, optional ones included.

    An applicant may omit an optional (nullable) field, and a cell may be empty; but a whole
    column missing is another file, not a book of applicants who all left it blank: scored, it
    would quietly give every row the missing-value treatment (a credit_data book without
    ``Income`` changed 78 of 175 decisions). Raises :class:`ScoringInputError` naming every
    absent input, the model, and the columns the file has.
    """
    present = set(columns)
    absent = [f for f in contract.features if f.name not in present]
    if not absent:
        return
    spelled = {name.strip().casefold(): name for name in columns}
    names = ", ".join(
        repr(f.name)
        + (" (optional: may be empty, not absent)" if f.nullable else "")
        + (
            f" (the file has {spelled[f.name.casefold()]!r}: names must match exactly)"
            if f.name.casefold() in spelled
            else ""
        )
        for f in absent
    )
    shown = ", ".join(map(repr, list(columns)[:SHOWN_COLUMNS])) + (
        f", ... ({len(columns)} in all)" if len(columns) > SHOWN_COLUMNS else ""
    )
    raise ScoringInputError(
        f"{source} lacks {len(absent)} of the {len(contract.features)} input columns of {model}: "
        f"{names}; its columns are: {shown or 'none'}. Score it with a model trained on such "
        "books (loanrisk train --data ...), or add the columns"
    )


@dataclass(frozen=True)
class Summary:
    """What a scoring run did."""

    rows: int
    scored: int
    rejected: int
    seconds: float
    output: Path
    rejects: Path
    model_name: str
    model_version: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def file_format(path: Path) -> str:
    """``csv`` or ``parquet`` from the suffix; raises :class:`ScoringInputError` otherwise."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ScoringInputError(f"{path}: expected a .csv or .parquet file")
    return kind


def default_rejects_path(output: Path) -> Path:
    """``<output stem>.rejects.csv`` beside the output."""
    return output.with_name(f"{output.stem}.rejects.csv")


class InputFile:
    """The columns scoring needs from one CSV or Parquet file, a chunk at a time."""

    def __init__(self, path: Path, wanted: Sequence[str]) -> None:
        if not path.is_file():
            raise ScoringInputError(f"{path} does not exist")
        self.path = path
        self.kind = file_format(path)
        if self.kind == "parquet":
            self._parquet = pq.ParquetFile(path)
            names = self._parquet.schema_arrow.names
            self.rows: int | None = self._parquet.metadata.num_rows
        else:
            with path.open(newline="") as handle:
                names = next(csv.reader(handle), [])
            self.rows = None  # not known without reading the file
        self.columns = [name for name in wanted if name in names]
        self.names = names

    def schema(self) -> pa.Schema:
        """The types the read columns will have (every CSV column is text)."""
        if self.kind == "parquet":
            arrow = self._parquet.schema_arrow
            return pa.schema([arrow.field(name) for name in self.columns])
        return pa.schema([(name, pa.string()) for name in self.columns])

    def batches(self, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        """Record batches of at most ``chunk_rows`` rows."""
        if self.kind == "parquet":
            # Columns are projected: an input's other columns are never decoded.
            reader = self._parquet.iter_batches(batch_size=chunk_rows, columns=self.columns)
        else:
            reader = pa_csv.open_csv(
                self.path,
                read_options=pa_csv.ReadOptions(block_size=chunk_rows * CSV_BYTES_PER_ROW),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=self.columns,
                    # Text, converted column by column in batch.chunks: a column inferred as
                    # numbers from the first block would fail the whole read on a later bad value.
                    column_types=dict.fromkeys(self.columns, pa.string()),
                    strings_can_be_null=True,
                ),
            )
        for batch in reader:
            for start in range(0, batch.num_rows, chunk_rows):
                yield batch.slice(start, chunk_rows)


class _Sink:
    """An Arrow table sink writing Parquet or CSV to a temporary name, renamed by :meth:`commit`."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        kind = file_format(path)
        self._writer: Any = (
            pq.ParquetWriter(self.partial, schema)
            if kind == "parquet"
            else pa_csv.CSVWriter(self.partial, schema)
        )

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table)

    def commit(self) -> None:
        self._writer.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        self.partial.unlink(missing_ok=True)


def score_file(
    input_path: Path,
    output: Path,
    path: ServicePath,
    model_name: str,
    model_version: str,
    id_columns: Sequence[str] = (),
    rejects: Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> Summary:
    """Score every row of ``input_path`` into ``output``; refused rows go to ``rejects``.

    ``on_chunk`` is told the number of rows of each chunk done (a progress bar). Raises
    :class:`ScoringInputError` before writing anything if a file's format is unknown, the input is
    missing, or it lacks an id column or a column for any of the model's inputs
    (:func:`require_inputs`).
    """
    started = time.perf_counter()
    rejects = rejects or default_rejects_path(output)
    for destination in (output, rejects):
        file_format(destination)
    contract = path.contract
    source = InputFile(
        input_path, [*id_columns, *(n for n in contract.names if n not in id_columns)]
    )
    absent_ids = [name for name in id_columns if name not in source.names]
    if absent_ids:
        raise ScoringInputError(f"{input_path} lacks id columns {absent_ids}")
    require_inputs(contract, source.names, str(input_path), f"{model_name} version {model_version}")
    scorer = ChunkScorer(path, model_name, model_version, id_columns)
    schema = source.schema()
    sinks = [
        _Sink(output, scorer.output_schema(schema)),
        _Sink(rejects, scorer.rejects_schema(schema)),
    ]
    rows = scored = rejected = 0
    try:
        for batch in source.batches(chunk_rows):
            good, bad = scorer.score(batch, first_row=rows)
            sinks[0].write(good)
            sinks[1].write(bad)
            rows += batch.num_rows
            scored += good.num_rows
            rejected += bad.num_rows
            if on_chunk is not None:
                on_chunk(batch.num_rows)
    except BaseException:
        for sink in sinks:
            sink.discard()
        raise
    for sink in sinks:
        sink.commit()
    return Summary(
        rows=rows,
        scored=scored,
        rejected=rejected,
        seconds=time.perf_counter() - started,
        output=output,
        rejects=rejects,
        model_name=model_name,
        model_version=model_version,
    )
