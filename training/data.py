"""Reading, validating and splitting applicant data."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from models.contract import ContractError, FeatureContract, Schema, infer_contract
from training.data_report import EXTRA_MISSING_MARKERS, ColumnError, Examined, examine

PROJECT_DIR = Path(__file__).resolve().parent.parent
BUNDLED_DATA = PROJECT_DIR / "data" / "credit_data.csv"
PARQUET_SUFFIXES = (".parquet", ".pq")
# Tried in order: a file that is not UTF-8 is most often a spreadsheet's Windows export; Latin-1
# decodes any bytes, so it is the last resort.
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024


class DataError(ValueError):
    """The training data cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class Dataset:
    """Validated training data: raw features, a 0/1 target and the contract they define."""

    path: Path
    sha256: str
    frame: pd.DataFrame
    y: np.ndarray
    contract: FeatureContract
    # What the checks found in every column (training/data_report.py); None for frames built
    # without them.
    examined: Examined | None = field(default=None, compare=False)

    @property
    def features(self) -> pd.DataFrame:
        return self.frame[self.contract.names]


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file was read: its encoding and delimiter (detected, not assumed)."""

    encoding: str
    delimiter: str

    def notes(self) -> list[str]:
        shown = {"\t": "tab", ",": "','", ";": "';'", "|": "'|'"}[self.delimiter]
        notes = [f"read as CSV: delimiter {shown}, encoding {self.encoding}"]
        if self.encoding != "utf-8-sig":
            notes.append(f"the file is not UTF-8: its text was decoded as {self.encoding}")
        return notes


def sniff_csv(path: Path) -> CsvDialect:
    """The encoding (:data:`ENCODINGS`, first that decodes the file's start) and the delimiter
    (``csv.Sniffer`` among :data:`DELIMITERS`; ``,`` when it cannot tell)."""
    sample = path.read_bytes()[:SNIFF_BYTES]
    for encoding in ENCODINGS:
        try:
            text = sample.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    # The sample may end mid-line (or mid-character): sniff whole lines only.
    lines = text.splitlines()[:200] if len(sample) < SNIFF_BYTES else text.splitlines()[:-1][:200]
    try:
        delimiter = csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","
    return CsvDialect(encoding=encoding, delimiter=delimiter)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, with a one-line reason for anything unreadable."""
    return _read(path)[0]


def _read(path: Path) -> tuple[pd.DataFrame, CsvDialect | None]:
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if not path.is_file():
        raise DataError(f"data path {path} is not a file")
    suffix = path.suffix.lower()
    if suffix not in (".csv", *PARQUET_SUFFIXES):
        raise DataError(f"data file {path} is not CSV or Parquet (expected .csv or .parquet)")
    dialect = None
    try:
        if suffix == ".csv":
            dialect = sniff_csv(path)
            # pandas' own missing markers plus the usual extra ones (training/data_report.py).
            frame = pd.read_csv(
                path,
                sep=dialect.delimiter,
                encoding=dialect.encoding,
                na_values=list(EXTRA_MISSING_MARKERS),
            )
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"data file {path} could not be read: {reason}") from None
    if frame.empty:
        raise DataError(f"data file {path} has no rows")
    return frame, dialect


def default_schema_for(path: Path) -> Path | None:
    """The schema file shipped next to a data file (``name.schema.json``), if any."""
    candidate = path.with_name(f"{path.stem}.schema.json")
    return candidate if candidate.is_file() else None


def load_dataset(
    path: Path,
    target: str | None = None,
    positive_label: str | None = None,
    schema_path: Path | None = None,
) -> Dataset:
    """Read, validate and describe a training file.

    Target and positive label come from the arguments, else from the schema file; a data file with a
    sibling ``<stem>.schema.json`` uses it unless another schema is given.
    """
    frame, dialect = _read(path)
    schema_path = schema_path or default_schema_for(path)
    try:
        schema = Schema.load(schema_path) if schema_path else Schema()
    except ContractError as exc:
        raise DataError(str(exc)) from None
    target = target or schema.target
    if target is None:
        raise DataError("no target column: pass --target or name it in the schema file")
    if target not in frame.columns:
        guess = ""
        if dialect is not None and len(frame.columns) == 1:
            guess = (
                f" (it has one column, {str(frame.columns[0])[:60]!r}: is the delimiter "
                f"something other than {dialect.delimiter!r}?)"
            )
        raise DataError(f"target column {target!r} is not in {path.name}{guess}")
    for name in [*schema.protected, *schema.drop, *schema.features]:
        if name not in frame.columns:
            raise DataError(f"schema names column {name!r}, which is not in the data")
    try:
        examined = examine(
            frame,
            target,
            schema,
            read_notes=[] if dialect is None else dialect.notes(),
            decimal_comma=dialect is not None and dialect.delimiter == ";",
            announce_read=dialect is not None and dialect != CsvDialect("utf-8-sig", ","),
        )
    except ColumnError as exc:
        raise DataError(str(exc)) from None
    frame = examined.frame
    labels = frame[target]
    if labels.isna().any():
        raise DataError(f"target column {target!r} has {int(labels.isna().sum())} missing values")
    classes = sorted(labels.astype(str).unique())
    if len(classes) != 2:
        raise DataError(
            f"target column {target!r} must have exactly two classes, found {len(classes)}: "
            f"{classes[:5]}"
        )
    positive_label = positive_label if positive_label is not None else schema.positive_label
    if positive_label is None:
        raise DataError(f"no positive label: pass --positive-label (one of {classes})")
    if str(positive_label) not in classes:
        raise DataError(
            f"positive label {positive_label!r} is not a value of {target!r}: {classes}"
        )
    y = (labels.astype(str) == str(positive_label)).to_numpy(dtype=np.int64)
    try:
        contract = infer_contract(
            frame,
            target,
            str(positive_label),
            schema,
            left_out=examined.left_out,
            booleans=examined.booleans,
        )
    except ContractError as exc:
        raise DataError(str(exc)) from None
    if not frame[contract.names].notna().any(axis=1).all():
        raise DataError("some rows have no feature values at all: remove them from the file")
    return Dataset(
        path=path,
        sha256=file_sha256(path),
        frame=frame,
        y=y,
        contract=contract,
        examined=examined,
    )


def stratified_split(
    y: np.ndarray, seed: int, validation_fraction: float = 0.2, test_fraction: float = 0.2
) -> Split:
    """Row indices for train / validation / test, each with the same default rate."""
    if min(np.bincount(y, minlength=2)) < 5:
        raise DataError("each class needs at least 5 rows to split into train, validation and test")
    indices = np.arange(len(y))
    rest, test = train_test_split(indices, test_size=test_fraction, stratify=y, random_state=seed)
    train, validation = train_test_split(
        rest,
        test_size=validation_fraction / (1.0 - test_fraction),
        stratify=y[rest],
        random_state=seed,
    )
    return Split(train=np.sort(train), validation=np.sort(validation), test=np.sort(test))
