"""``loanrisk outcomes import FILE``: the loan system's file of outcomes into the audit database.

Same rules and same code as ``POST /v1/outcomes`` (:func:`service.outcomes.record_outcomes`):
idempotent, a changed outcome kept as a correction, unknown decision ids reported, an id given on
more than one row refused on each (:func:`service.outcomes.repeated_ids`).

Exit codes: 0 every row stored (recorded, unchanged or corrected); 1 some rows were invalid or
named no known decision (the valid, known ones are stored all the same: importing the file again
after fixing it changes nothing for them); 2 the file could not be used (missing, unreadable, a
column missing), the database is a SQLite file that does not exist, or it could not be written:
nothing stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.console import fail

outcomes_app = typer.Typer(
    help="Observed outcomes of decided loans (the loan system's monthly file).",
    no_args_is_help=True,
)

COLUMNS = ("request_id", "defaulted", "observed_at")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
# Invalid rows printed in full; beyond this only counted.
_SHOWN = 20


def read_outcome_file(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV or Parquet file (by suffix: ``.parquet``/``.pq`` is Parquet), as dicts of
    the three columns, values as read (strings from a CSV). Raises ValueError naming a missing
    column, OSError when the file cannot be read."""
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: column(s) missing: {', '.join(missing)}")
    return frame[list(COLUMNS)].to_dict("records")


def parse_rows(raw: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]]]:
    """Validate rows with the API's model; ``defaulted`` read as true/false, 1/0, yes/no.

    Returns the valid rows (``OutcomeIn``) and one ``{"row", "field", "message"}`` per invalid
    row (``row`` counts data rows from 1, as a spreadsheet would after the header). Every row of
    a ``request_id`` that appears more than once is invalid (which one is right cannot be
    known): the first ``repeated in row N``, the others ``repeats row M``.
    """
    from pydantic import ValidationError

    from service.errors import field_path
    from service.outcomes import OutcomeIn, repeated_ids

    # An id that is not a non-empty string is invalid on its own: a fresh object never repeats.
    ids = [i if isinstance(i, str) and i else object() for i in (r["request_id"] for r in raw)]
    repeats = repeated_ids(ids)  # 0-based position -> the first position of its id
    repeated_in: dict[int, int] = {}  # that first position -> its first repeat
    for position, first in repeats.items():
        repeated_in.setdefault(first, position)
    valid: list[OutcomeIn] = []
    invalid: list[dict[str, Any]] = []
    for number, row in enumerate(raw, start=1):
        if number - 1 in repeats:
            message = f"repeats row {repeats[number - 1] + 1}"
        elif number - 1 in repeated_in:
            message = f"repeated in row {repeated_in[number - 1] + 1}"
        else:
            message = ""
        if message:
            invalid.append({"row": number, "field": "request_id", "message": message})
            continue
        values = dict(row)
        flag = values["defaulted"]
        if isinstance(flag, str):
            word = flag.strip().lower()
            values["defaulted"] = True if word in _TRUE else False if word in _FALSE else flag
        elif flag is not None and not isinstance(flag, bool) and flag in (0, 1):
            values["defaulted"] = bool(flag)
        if hasattr(values["observed_at"], "to_pydatetime"):  # a Parquet timestamp
            values["observed_at"] = values["observed_at"].to_pydatetime()
        try:
            valid.append(OutcomeIn.model_validate(values))
        except ValidationError as exc:
            error = exc.errors()[0]
            invalid.append(
                {"row": number, "field": field_path(error["loc"]), "message": error["msg"]}
            )
    return valid, invalid


@outcomes_app.command("import")
def import_outcomes(
    file: Annotated[
        Path, typer.Argument(help="CSV or Parquet: request_id, defaulted, observed_at")
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Store the file's outcomes in the audit database (LOANRISK_AUDIT_DB_URL, which must exist),
    upgrading its schema first; exit 1 if rows were invalid or unknown, 2 if nothing could be
    stored."""
    from sqlalchemy.exc import SQLAlchemyError

    from cli.db import existing_audit_url
    from service.audit import make_engine
    from service.audit.migrations import AuditSchemaError, upgrade
    from service.outcomes import record_outcomes

    url = existing_audit_url()
    try:
        raw = read_outcome_file(file)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    valid, invalid = parse_rows(raw)
    engine = make_engine(url)
    try:
        upgrade(url)
        result = record_outcomes(engine, valid, source="import")
    except (AuditSchemaError, SQLAlchemyError) as exc:
        raise fail(f"outcomes could not be stored: {exc}".splitlines()[0]) from None
    finally:
        engine.dispose()
    summary = {"rows": len(raw), **result.model_dump(), "invalid": invalid}
    if json_output:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"{len(raw)} rows: {result.recorded} recorded, {result.unchanged} unchanged, "
            f"{result.corrected} corrected, {len(result.unknown)} unknown, {len(invalid)} invalid"
        )
        for request_id in result.unknown[:_SHOWN]:
            typer.echo(f"  unknown request id: {request_id}")
        for problem in invalid[:_SHOWN]:
            typer.echo(f"  row {problem['row']}: {problem['field']}: {problem['message']}")
        hidden = max(len(result.unknown) - _SHOWN, 0) + max(len(invalid) - _SHOWN, 0)
        if hidden:
            typer.echo(f"  ... and {hidden} more (--json lists them all)")
    if result.unknown or invalid:
        raise typer.Exit(1)
