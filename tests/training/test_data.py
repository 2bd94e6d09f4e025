from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CREDIT_DATA, LENDING_CLUB
from training.data import DataError, load_dataset, read_table, stratified_split


def test_bundled_credit_data_loads_with_its_schema() -> None:
    dataset = load_dataset(CREDIT_DATA)
    assert dataset.contract.target == "Status"
    assert dataset.contract.positive_label == "bad"
    assert len(dataset.frame) == 4454
    assert dataset.y.mean() == pytest.approx(0.282, abs=0.001)
    assert "Age" not in dataset.contract.names and "Marital" not in dataset.contract.names
    assert len(dataset.sha256) == 64


def test_lending_club_loads_with_its_schema() -> None:
    dataset = load_dataset(LENDING_CLUB)
    assert dataset.contract.target == "Class"
    assert dataset.y.mean() == pytest.approx(0.052, abs=0.001)
    assert dataset.contract.feature("addr_state").kind == "categorical"


def test_parquet_reads_like_csv(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    path = tmp_path / "credit.parquet"
    credit_frame.to_parquet(path)
    dataset = load_dataset(path, target="Status", positive_label="bad")
    assert len(dataset.frame) == len(credit_frame)


def test_cli_arguments_override_schema_target(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    pd.DataFrame({"outcome": ["paid", "default"] * 10, "x": range(20)}).to_csv(path, index=False)
    dataset = load_dataset(path, target="outcome", positive_label="default")
    assert dataset.y.tolist() == [0, 1] * 10


@pytest.mark.parametrize(
    ("content", "suffix", "kwargs", "message"),
    [
        ("a,b\n1,2\n", ".csv", {"target": "Status", "positive_label": "bad"}, "not in"),
        (
            "Status,x\nbad,1\nbad,2\n",
            ".csv",
            {"target": "Status", "positive_label": "bad"},
            "exactly two",
        ),
        (
            "Status,x\na,1\nb,2\nc,3\n",
            ".csv",
            {"target": "Status", "positive_label": "a"},
            "exactly two",
        ),
        ("", ".csv", {"target": "Status", "positive_label": "bad"}, "empty"),
        ("Status,x\n", ".csv", {"target": "Status", "positive_label": "bad"}, "no rows"),
        (
            "Status,x\ngood,1\nbad,2\n",
            ".txt",
            {"target": "Status", "positive_label": "bad"},
            "not CSV or Parquet",
        ),
        (
            "Status,x\ngood,1\nbad,2\n",
            ".csv",
            {"target": "Status", "positive_label": "oops"},
            "not a value",
        ),
        ("Status,x\ngood,1\nbad,2\n", ".csv", {"positive_label": "bad"}, "no target"),
        (
            "not parquet at all",
            ".parquet",
            {"target": "Status", "positive_label": "bad"},
            "could not be read",
        ),
        (
            "Status,x\ngood,1\n,2\nbad,3\n",
            ".csv",
            {"target": "Status", "positive_label": "bad"},
            "missing values",
        ),
    ],
)
def test_unusable_data_gives_a_one_line_reason(
    tmp_path: Path, content: str, suffix: str, kwargs: dict, message: str
) -> None:
    path = tmp_path / f"data{suffix}"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        load_dataset(path, **kwargs)
    assert "\n" not in str(caught.value)


def test_a_path_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


def test_a_directory_is_not_a_data_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a file"):
        read_table(tmp_path)


def test_split_is_stratified_disjoint_and_reproducible() -> None:
    y = np.array([1] * 300 + [0] * 700)
    first = stratified_split(y, seed=7)
    again = stratified_split(y, seed=7)
    other = stratified_split(y, seed=8)
    assert np.array_equal(first.test, again.test)
    assert not np.array_equal(first.test, other.test)
    parts = [first.train, first.validation, first.test]
    assert sum(len(p) for p in parts) == len(y)
    assert len(set(np.concatenate(parts))) == len(y)
    for part in parts:
        assert y[part].mean() == pytest.approx(0.3, abs=0.01)


def test_split_needs_a_few_rows_of_each_class() -> None:
    with pytest.raises(DataError, match="at least 5"):
        stratified_split(np.array([1, 1, 0] + [0] * 50), seed=0)
