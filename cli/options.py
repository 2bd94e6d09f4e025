"""Command-line options shared by `loanrisk` and `loanrisk experiment`: the loan file to read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataOption = Annotated[
    Path | None, typer.Option(help="CSV or Parquet loan file; default: the bundled credit_data.csv")
]
TargetOption = Annotated[str | None, typer.Option(help="Target column (else from the schema)")]
PositiveLabelOption = Annotated[
    str | None, typer.Option(help="Target value meaning default (else from the schema)")
]
