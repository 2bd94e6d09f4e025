"""The column checks flag exactly the rows the service's validation refuses."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from pydantic import ValidationError

from batch.chunks import check_columns
from models.contract import FeatureContract, FeatureSpec
from service.schemas import RecordValidator

CONTRACT = FeatureContract(
    target="outcome",
    positive_label="default",
    features=(
        FeatureSpec("income", "numeric", minimum=0.0),
        FeatureSpec("ratio", "numeric", nullable=True, exclusive_minimum=0.0, maximum=1.5),
        FeatureSpec("purpose", "categorical"),
        FeatureSpec("home", "categorical", nullable=True),
    ),
)

TEXT_ROWS = [
    # income, ratio, purpose, home
    ("100", "0.5", "car", "rent"),
    ("0", None, "car", None),  # nullable fields omitted
    ("1e3", "1.5", "home", "own"),  # on the bounds
    ("-1", "0.5", "car", "rent"),  # below the minimum
    ("100", "0", "car", "rent"),  # at an exclusive minimum
    ("100", "1.6", "car", "rent"),  # above the maximum
    (None, "0.5", "car", "rent"),  # a required number omitted
    ("abc", "0.5", "car", "rent"),  # text
    ("inf", "0.5", "car", "rent"),
    ("-inf", "0.5", "car", "rent"),
    ("nan", "0.5", "car", "rent"),  # NaN is an omitted value: required here
    ("100", "nan", "car", "rent"),  # ... and allowed here
    ("1e400", "0.5", "car", "rent"),  # overflows to infinity
    ("100", "0.5", None, "rent"),  # a required category omitted
    ("100", "0.5", "", "rent"),  # an empty category
    ("100", "0.5", "x" * 200, "rent"),  # the longest category
    ("100", "0.5", "x" * 201, "rent"),  # too long
    ("100", "0.5", "é" * 200, "rent"),  # 200 characters, 400 bytes
    ("-1", "abc", None, "x" * 300),  # everything wrong
]


def verdicts(table: pa.Table) -> tuple[list[bool], list[bool]]:
    """(column checks' flags, the service validator's refusals) for each row."""
    checked = check_columns(table, CONTRACT.features)
    validator = RecordValidator(CONTRACT, batch_max=1)
    refused = []
    for row in range(table.num_rows):
        try:
            validator.one(json.dumps(checked.body(row)))
            refused.append(False)
        except ValidationError:
            refused.append(True)
    return checked.flagged.tolist(), refused


def test_text_columns_are_flagged_as_the_validator_refuses_them() -> None:
    columns = list(zip(*TEXT_ROWS, strict=True))
    table = pa.table(
        {
            spec.name: pa.array(values, pa.string())
            for spec, values in zip(CONTRACT.features, columns, strict=False)
        }
    )
    flagged, refused = verdicts(table)
    assert flagged == refused
    assert sum(refused) == 13  # the test can fail: most kinds of bad row are here


def test_typed_columns_are_flagged_as_the_validator_refuses_them() -> None:
    table = pa.table(
        {
            "income": pa.array([1, -2, None, 2**40, 7], pa.int64()),
            "ratio": pa.array([0.5, np.nan, 2.0, None, float("inf")], pa.float64()),
            "purpose": pa.array([1, 2, 3, None, 5], pa.int32()),  # numbers as category text
            "home": pa.array([True, None, False, True, True], pa.bool_()),
        }
    )
    flagged, refused = verdicts(table)
    assert flagged == refused == [False, True, True, True, True]


def test_booleans_for_numbers_are_refused_as_the_service_refuses_them() -> None:
    table = pa.table(
        {
            "income": pa.array([True, None, False], pa.bool_()),
            "ratio": pa.array([None, None, None], pa.null()),
            "purpose": ["a", "b", "c"],
        }
    )  # home absent: omitted
    flagged, refused = verdicts(table)
    assert flagged == refused == [True, True, True]


def test_a_bad_value_reads_the_same_in_a_clean_chunk_and_a_dirty_one() -> None:
    values = [str(v) for v in range(1000)]
    clean = check_columns(pa.table({"income": values}), CONTRACT.features[:1])
    values[517] = "n/a?"
    dirty = check_columns(pa.table({"income": values}), CONTRACT.features[:1])
    assert np.flatnonzero(dirty.flagged).tolist() == [517]
    assert dirty.body(517) == {"income": "n/a?"}
    keep = np.arange(1000) != 517
    np.testing.assert_array_equal(dirty.numeric["income"][keep], clean.numeric["income"][keep])
