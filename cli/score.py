"""``loanrisk score``: score a file of applicants (or a Spark DataFrame read from one) with a
registered model.

Exit codes: 0 every row scored; 1 the output was written but some rows were refused (they are in
the rejects file); 2 nothing was scored (bad options, unreadable input, a column for one of the
model's inputs is absent, optional ones included, no such model).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

EXIT_REJECTS = 1
EXIT_USAGE = 2


def score(
    input_path: Annotated[
        Path, typer.Option("--input", help="Applicants: a .csv or .parquet file", dir_okay=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            help="Scored rows: .parquet or .csv (with --engine spark, a directory of part files)"
        ),
    ],
    model: Annotated[
        str,
        typer.Option(help="models:/NAME@ALIAS, models:/NAME/VERSION or a model directory"),
    ] = "models:/loan-default@champion",
    reasons: Annotated[
        int | None,
        typer.Option(min=0, max=20, help="Reason codes per row (default: the service's)"),
    ] = None,
    id_column: Annotated[
        list[str] | None,
        typer.Option(help="Input column carried to the output (repeatable), e.g. loan_id"),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Refused rows and the service's message (default <output stem>.rejects.csv)"
        ),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows read, scored and written at a time")
    ] = 65_536,
    engine: Annotated[str, typer.Option(help="local (this process) or spark")] = "local",
    progress: Annotated[
        bool | None, typer.Option(help="Show a progress bar (default: when stderr is a terminal)")
    ] = None,
) -> None:
    """Score every row of a file with a registered model: the numbers of POST /v1/score, with the
    rows it would refuse written to a rejects file with its message."""
    import pyarrow as pa

    from batch.files import ScoringInputError
    from batch.service_path import ModelNotFound

    if engine not in ("local", "spark"):
        _usage(f"--engine must be local or spark, not {engine!r}")
    ids = list(id_column or [])
    try:
        if engine == "spark":
            from batch.spark import score_spark_files

            summary = score_spark_files(input_path, output, model, reasons, ids, rejects)
        else:
            summary = _score_locally(
                input_path, output, model, reasons, ids, rejects, chunk_rows, progress
            )
    except (ScoringInputError, ModelNotFound) as exc:
        _usage(str(exc))
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        # A file Arrow cannot read (not Parquet, an empty file, a CSV line with another number of
        # fields, text that is not UTF-8 or Windows-1252, a nested column): nothing was written.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _usage(f"{input_path} cannot be read: {reason}")
    typer.echo(
        f"scored {summary.scored:,} of {summary.rows:,} rows with {summary.model_name} version "
        f"{summary.model_version} in {summary.seconds:.1f} s "
        f"({summary.rows_per_second:,.0f} rows/s)\n"
        f"  output:   {summary.output}\n"
        f"  rejected: {summary.rejected:,} rows -> {summary.rejects}"
    )
    if summary.rejected:
        raise typer.Exit(EXIT_REJECTS)


def _score_locally(
    input_path: Path,
    output: Path,
    model: str,
    reasons: int | None,
    ids: list[str],
    rejects: Path | None,
    chunk_rows: int,
    progress: bool | None,
):  # -> batch.files.Summary
    from tqdm import tqdm

    from batch.files import InputFile, score_file
    from batch.service_path import ServicePath, resolve_model

    with tempfile.TemporaryDirectory(prefix="loanrisk-score-") as tmp:
        source = resolve_model(model, Path(tmp))
        path = ServicePath(source.directory, reasons)
        total = InputFile(input_path, []).rows if input_path.is_file() else None
        show = sys.stderr.isatty() if progress is None else progress
        with tqdm(
            total=total, unit=" rows", unit_scale=True, disable=not show, file=sys.stderr
        ) as bar:
            return score_file(
                input_path,
                output,
                path,
                source.name,
                source.version,
                id_columns=ids,
                rejects=rejects,
                chunk_rows=chunk_rows,
                on_chunk=bar.update,
            )


def _usage(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)
