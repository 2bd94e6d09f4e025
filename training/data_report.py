"""The checks every training file goes through before anything is fitted, and their report.

:func:`examine` reads each column as the model will (missing markers, numbers written as text,
padded categories, pandas nullable and Arrow types, booleans, decimals, dates), decides what to do
with it, and returns the cleaned frame with one :class:`ColumnReport` per column. A column that
cannot be used stops the run with a one-line :class:`ColumnError` naming it.

What happens to each kind of column (the README's training section says the same):

- Missing markers (:data:`MISSING_MARKERS`, also when padded with spaces) and every missing value
  pandas or Arrow has (``None``, NaN, ``pd.NA``, ``NaT``) are missing, whatever the dtype.
- Text that is mostly numbers (:data:`MOSTLY_NUMBERS`) is a number column: thousands separators,
  currency symbols, a trailing ``%`` and, in ``;``-separated files, a decimal comma are read; the
  values that still do not parse are reported (count, up to five examples) and read as missing,
  unless they are more than :data:`MAX_UNPARSEABLE_SHARE` of the values: then the run stops and
  names the column (a schema entry settles it either way).
- Decimals (Parquet ``decimal128``, Python ``Decimal``) and nullable integers / floats are numbers.
- Booleans (``bool``, pandas ``boolean``, Arrow ``bool``) are boolean fields: JSON ``true`` /
  ``false`` at the service, categories ``"True"`` / ``"False"`` inside the model.
- Text categories are normalised (models/normalise.py: surrounding whitespace stripped, case kept).
- Dates and durations are refused by name (derive a number from them, or drop them in the schema).
- A column with no values, or one value on every row, is dropped: it cannot inform the model, and
  leaving it out of the contract means it cannot move any answer.
- A text column with a distinct value on (nearly) every row (:data:`IDENTIFIER_SHARE`) is an
  identifier or free text: reported and left out, unless the schema file declares it.
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from models.contract import Schema
from models.normalise import CURRENT_NORMALISATION, READ_AS, normalise_categories

# Read as missing on top of pandas' own list ("", "NA", "N/A", "n/a", "NULL", "null", "NaN",
# "nan", "None", "#N/A", "<NA>", ...), in CSV files and, after stripping spaces, in text columns.
EXTRA_MISSING_MARKERS = ("?", "-", "--", "na", "Null", "NONE", "none")
MISSING_MARKERS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-NaN", "-nan", "<NA>", "N/A", "NA", "NULL", "NaN", "None"}
    | {"n/a", "nan", "null", *EXTRA_MISSING_MARKERS}
)
# A text column is a number column when at least this share of its present values parse.
MOSTLY_NUMBERS = 0.5
# ... and is trusted as one only when at most this share do not (those are read as missing). In
# between, the run stops: 10% of "numbers" that are words is more likely a category or a mangled
# export than a few stray markers.
MAX_UNPARSEABLE_SHARE = 0.05
# A text column whose distinct values are at least this share of its present values, over at
# least IDENTIFIER_MIN_ROWS rows, is an identifier or free text.
IDENTIFIER_SHARE = 0.95
IDENTIFIER_MIN_ROWS = 20
EXAMPLES = 5

Kind = Literal["numeric", "categorical", "boolean", "date", "empty", "constant", "identifier"]
Action = Literal["kept", "normalised", "dropped", "refused", "target", "protected", "excluded"]

_CURRENCY = re.compile(r"^([+-]?)\s*[$€£¥]\s*|\s*(?:[$€£¥]|USD|EUR|GBP)$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:[,' _]\d{3})+(?:\.\d*)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


class ColumnError(ValueError):
    """A column cannot be used; the message names it and says what would fix it, on one line."""


@dataclass(frozen=True)
class ColumnReport:
    """What one column held and what training does with it."""

    name: str
    dtype: str
    kind: str
    why: str
    missing_share: float
    distinct: int
    summary: str
    action: str
    reason: str
    unparseable: int = 0
    examples: tuple[str, ...] = ()


@dataclass
class Examined:
    """The cleaned frame (features as the model reads them), and what was found."""

    frame: pd.DataFrame
    columns: list[ColumnReport]
    left_out: list[str] = field(default_factory=list)
    booleans: list[str] = field(default_factory=list)
    read_notes: list[str] = field(default_factory=list)
    # Whether the file was read in an unusual way (not a UTF-8, comma-separated CSV): said on the
    # console as well as in the report.
    announce_read: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "normalisation": CURRENT_NORMALISATION,
            "read": self.read_notes,
            "rows": len(self.frame),
            "columns": [asdict(c) for c in self.columns],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def lines(self) -> list[str]:
        """One console line per column that was not simply kept, then the read notes."""
        out = list(self.read_notes) if self.announce_read else []
        for c in self.columns:
            if c.action in ("dropped", "normalised", "refused") or c.unparseable:
                out.append(f"  {c.name}: {c.action} ({c.reason})")
        return out

    def markdown(self, title: str) -> str:
        """``data/report.md``: one table row per column."""
        rows = [
            f"# Data report: {title}",
            "",
            *(f"- {note}" for note in self.read_notes),
            f"- {len(self.frame)} rows; category values normalised with version "
            f"{CURRENT_NORMALISATION} (surrounding whitespace stripped, case kept)",
            "",
            "| column | read as | kind | why | missing | distinct | range / top values | action "
            "| because |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in self.columns:
            cells = [
                c.name,
                c.dtype,
                c.kind,
                c.why,
                f"{c.missing_share:.1%}",
                str(c.distinct),
                c.summary,
                c.action,
                c.reason,
            ]
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        return "\n".join(rows) + "\n"


def _is_text(values: pd.Series) -> bool:
    """Object or string dtype (pandas 3 reads text as ``str``, older pandas as ``object``)."""
    return values.dtype == object or isinstance(values.dtype, pd.StringDtype)


def _is_missing_text(values: pd.Series) -> pd.Series:
    """True where a text value is a missing marker once stripped."""
    return values.map(lambda v: isinstance(v, str) and v.strip() in MISSING_MARKERS).astype(bool)


def parse_numbers(texts: pd.Series, decimal_comma: bool = False) -> pd.Series:
    """Text read as numbers (float64, NaN where it does not parse): thousands separators,
    currency symbols and a trailing ``%`` removed; with ``decimal_comma``, ``"12,5"`` is 12.5."""

    def clean(text: str) -> str:
        text = _CURRENCY.sub(r"\1", text.strip()).removesuffix("%").strip()
        if decimal_comma and _DECIMAL_COMMA.match(text):
            return text.replace(",", ".")
        if _THOUSANDS.match(text):
            return re.sub(r"[,' _]", "", text)
        return text

    cleaned = texts.map(lambda v: clean(v) if isinstance(v, str) else v)
    return pd.to_numeric(cleaned, errors="coerce").astype(np.float64)


def _summary_numeric(values: pd.Series) -> str:
    present = values.dropna()
    if present.empty:
        return ""
    return f"{present.min():g} to {present.max():g}, median {present.median():g}"


def _summary_categories(values: pd.Series) -> str:
    counts = values.value_counts(dropna=True)
    total = max(int(counts.sum()), 1)
    return ", ".join(f"{k!s} ({n / total:.0%})" for k, n in counts.head(5).items())


def _case_clashes(values: pd.Series) -> list[str]:
    """Groups of distinct values that differ only in case, e.g. ``Rent/rent``."""
    groups: dict[str, set[str]] = {}
    for value in values.dropna().unique():
        groups.setdefault(str(value).casefold(), set()).add(str(value))
    return ["/".join(sorted(g)) for g in groups.values() if len(g) > 1]


def _all_of(values: pd.Series, types: tuple[type, ...], exclude: tuple[type, ...] = ()) -> bool:
    present = values.dropna()
    return bool(len(present)) and all(
        isinstance(v, types) and not isinstance(v, exclude) for v in present.tolist()
    )


def _examine_column(
    name: str, raw: pd.Series, declared: str | None, decimal_comma: bool
) -> tuple[pd.Series, ColumnReport]:
    """The cleaned column and its report; raise ColumnError if it cannot be used."""
    dtype = str(raw.dtype)
    n = len(raw)
    marker = _is_missing_text(raw) if _is_text(raw) else None
    values = raw.astype(object).where(~raw.isna(), None)
    if marker is not None:
        values = values.where(~marker, None)
    present = values.notna()

    def report(
        kind: str,
        why: str,
        cleaned: pd.Series,
        action: str,
        reason: str,
        summary: str = "",
        unparseable: int = 0,
        examples: tuple[str, ...] = (),
    ) -> tuple[pd.Series, ColumnReport]:
        return cleaned, ColumnReport(
            name=name,
            dtype=dtype,
            kind=kind,
            why=why,
            missing_share=round(1.0 - float(cleaned.notna().mean()), 6) if n else 1.0,
            distinct=int(cleaned.nunique(dropna=True)),
            summary=summary,
            action=action,
            reason=reason,
            unparseable=unparseable,
            examples=examples,
        )

    if not present.any():
        return report("empty", "no values", values, "dropped", "every value is missing")

    is_dates = (
        pd.api.types.is_datetime64_any_dtype(raw)
        or pd.api.types.is_timedelta64_dtype(raw)
        or _all_of(values, (datetime.date, datetime.time, datetime.timedelta, pd.Timestamp))
    )
    if is_dates and declared is None:
        raise ColumnError(
            f"column {name!r} holds dates or durations ({dtype}); the model takes numbers and "
            f'categories: derive a number from it (e.g. months since) or list it under "drop" in '
            f"the schema file"
        )

    is_bool = pd.api.types.is_bool_dtype(raw) or _all_of(values, (bool, np.bool_))
    if is_bool and declared in (None, "categorical"):
        cleaned = values.map(lambda v: None if v is None else bool(v))
        kind, why = "boolean", f"{dtype} values true/false"
    elif declared == "categorical":
        cleaned, kind, why = normalise_categories(values), "categorical", "declared in the schema"
    elif pd.api.types.is_numeric_dtype(raw) and not is_bool:
        if isinstance(raw.dtype, np.dtype):  # plain NumPy numbers: kept as read (int64 stays)
            cleaned = raw
        else:  # nullable Int64 / Float64, Arrow numbers: float64 with NaN for missing
            cleaned = pd.to_numeric(values, errors="coerce").astype(np.float64)
        kind = "numeric"
        why = "declared in the schema" if declared else f"{dtype} values"
    elif _all_of(values, (int, float, decimal.Decimal, np.number), exclude=(bool, np.bool_)):
        cleaned = pd.to_numeric(values.map(lambda v: None if v is None else float(v)))
        cleaned = cleaned.astype(np.float64)
        kind, why = "numeric", "decimal / number objects" if declared is None else "declared"
    else:
        texts = values.map(lambda v: None if v is None else str(v))
        numbers = parse_numbers(texts, decimal_comma)
        bad = present & numbers.isna()
        parsed_share = float((present & numbers.notna()).sum()) / float(present.sum())
        bad_share = 1.0 - parsed_share
        examples = tuple(str(v) for v in texts[bad].drop_duplicates().head(EXAMPLES).tolist())
        if declared == "numeric" or parsed_share >= MOSTLY_NUMBERS:
            if declared is None and bad_share > MAX_UNPARSEABLE_SHARE:
                raise ColumnError(
                    f"column {name!r} is mostly numbers but {int(bad.sum())} values "
                    f"({bad_share:.0%}) are not, e.g. {list(examples)}; declare it in the schema "
                    f'file: "{name}": {{"kind": "numeric"}} reads those as missing, '
                    f'{{"kind": "categorical"}} keeps it as text'
                )
            if declared == "numeric" and parsed_share == 0.0:
                raise ColumnError(
                    f"column {name!r} is declared numeric but none of its values is a number, "
                    f"e.g. {list(examples)}"
                )
            why = "declared in the schema" if declared else f"{parsed_share:.1%} of values parse"
            changed = bool(bad.any()) or _is_text(raw)
            reason = "numbers read from text" if changed else "numbers"
            if bad.any():
                reason = (
                    f"{int(bad.sum())} values are not numbers, read as missing: {list(examples)}"
                )
            return report(
                "numeric",
                why,
                numbers,
                "normalised" if changed else "kept",
                reason,
                _summary_numeric(numbers),
                int(bad.sum()),
                examples,
            )
        cleaned = normalise_categories(values)
        kind, why = (
            "categorical",
            "text, " + (f"only {parsed_share:.0%} numbers" if parsed_share else "not numbers"),
        )

    distinct = int(cleaned.nunique(dropna=True))
    if kind == "numeric":
        summary = _summary_numeric(pd.to_numeric(cleaned, errors="coerce"))
    else:
        summary = _summary_categories(cleaned)
    if distinct == 1 and not cleaned.isna().any():
        return report(
            "constant", why, cleaned, "dropped", f"one value on every row: {summary}", summary
        )
    n_present = int(cleaned.notna().sum())
    if (
        kind == "categorical"
        and declared is None
        and n_present >= IDENTIFIER_MIN_ROWS
        and distinct >= IDENTIFIER_SHARE * n_present
    ):
        return report(
            "identifier",
            f"{distinct} distinct values in {n_present} rows",
            cleaned,
            "dropped",
            "an identifier or free text, not a feature (declare it in the schema file to keep it)",
            summary,
        )
    action, reason = "kept", "used as a model input"
    if kind == "categorical":
        stripped = values.map(lambda v: isinstance(v, str) and v != v.strip()).astype(bool)
        if stripped.any():
            action, reason = (
                "normalised",
                f"surrounding spaces removed on {int(stripped.sum())} rows",
            )
        elif marker is None or not marker.any():
            # Nothing to change: the column as read (the model reads it the same way), so clean
            # files reach the fit exactly as before these checks existed.
            cleaned = raw
        clashes = _case_clashes(cleaned)
        if clashes:
            reason += f"; values differing only in case kept apart: {clashes[:EXAMPLES]}"
    if kind == "boolean":
        reason = "a boolean field (JSON true / false)"
    return report(kind, why, cleaned, action, reason, summary)


def examine(
    frame: pd.DataFrame,
    target: str,
    schema: Schema,
    read_notes: Sequence[str] = (),
    decimal_comma: bool = False,
    announce_read: bool = False,
) -> Examined:
    """Check and clean every column of ``frame`` before anything is fitted.

    Returns the cleaned frame (same rows and column order; features as the model reads them) and
    one report per column; raises ColumnError naming every column that cannot be used.
    """
    cleaned: dict[Any, pd.Series] = {}
    reports: list[ColumnReport] = []
    left_out: list[str] = []
    booleans: list[str] = []
    problems: list[str] = []
    for name in frame.columns:
        raw = frame[name]
        if name == target or name in schema.protected or name in schema.drop:
            role: Action = (
                "target"
                if name == target
                else "protected"
                if name in schema.protected
                else "excluded"
            )
            column = raw
            if _is_text(raw):
                text = raw.astype(object)
                changed = _is_missing_text(text) | text.map(
                    lambda v: isinstance(v, str) and v != v.strip()
                ).astype(bool)
                if changed.any():
                    column = normalise_categories(text.where(~_is_missing_text(text), None))
            cleaned[name] = column
            reports.append(
                ColumnReport(
                    name=str(name),
                    dtype=str(raw.dtype),
                    kind=role,
                    why="named in the schema file" if name != target else "the outcome",
                    missing_share=round(float(column.isna().mean()), 6),
                    distinct=int(column.nunique(dropna=True)),
                    summary=_summary_categories(column)
                    if _is_text(column)
                    else _summary_numeric(pd.to_numeric(column, errors="coerce")),
                    action=role,
                    reason={
                        "target": "what the model predicts",
                        "protected": "reported on for fairness, never a model input",
                        "excluded": 'listed under "drop" in the schema file',
                    }[role],
                )
            )
            continue
        declared = schema.features.get(str(name))
        try:
            column, column_report = _examine_column(
                str(name), raw, None if declared is None else declared.kind, decimal_comma
            )
        except ColumnError as exc:
            problems.append(str(exc))
            continue
        cleaned[name] = column
        reports.append(column_report)
        if column_report.action == "dropped":
            left_out.append(str(name))
        elif column_report.kind == "boolean":
            booleans.append(str(name))
    if problems:
        raise ColumnError("; ".join(problems))
    out = pd.DataFrame(cleaned, index=frame.index)
    # Each column's dtype as read, carried with the frame (pandas keeps ``attrs`` through
    # selections): the pyfunc signature needs it to accept the training file's own rows.
    out.attrs[READ_AS] = {str(name): str(frame[name].dtype) for name in frame.columns}
    return Examined(
        frame=out,
        columns=reports,
        left_out=left_out,
        booleans=booleans,
        read_notes=list(read_notes),
        announce_read=announce_read,
    )
