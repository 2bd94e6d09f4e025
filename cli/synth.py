"""``loanrisk synth``: write a synthetic loan book of any size (generator: training/synth.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer


def synth(
    rows: Annotated[int, typer.Option(min=1, help="Number of loan applications to write")],
    output: Annotated[
        Path,
        typer.Option(
            help="Output file, .csv or .parquet; its schema goes to <stem>.schema.json beside it",
            dir_okay=False,
        ),
    ],
    seed: Annotated[
        int, typer.Option(min=0, help="Seed: the same seed and rows give an identical file")
    ] = 0,
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="csv or parquet (default: from the output suffix, which it must match)",
        ),
    ] = None,
) -> None:
    """Write a SYNTHETIC loan book: realistic applicants, protected attributes kept out of the
    inputs, and a default outcome from a documented model (docs/synthetic-data.md)."""
    from training.synth import SynthError, check_arguments, write_synthetic

    started = time.perf_counter()
    try:
        check_arguments(rows, seed, output, file_format)
        with typer.progressbar(length=rows, label="synthetic rows") as bar:
            result = write_synthetic(output, rows, seed=seed, fmt=file_format, progress=bar.update)
    except SynthError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    seconds = time.perf_counter() - started
    typer.echo(
        f"wrote {result.rows:,} synthetic applications to {result.path} ({result.format}, "
        f"seed {seed}), default rate {result.default_rate:.3f}, "
        f"{seconds:.1f} s ({result.rows / seconds:,.0f} rows/s)"
    )
    typer.echo(f"schema: {result.schema_path} (target default, positive label yes)")
