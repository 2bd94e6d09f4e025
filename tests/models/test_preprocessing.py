import numpy as np
import pandas as pd
import pytest

from models.contract import Schema, infer_contract
from models.few import FEW_ROWS
from models.preprocessing import UNKNOWN_CATEGORY, Preprocessor
from tests.conftest import CREDIT_DATA


@pytest.fixture
def fitted(credit_frame: pd.DataFrame) -> tuple[Preprocessor, pd.DataFrame]:
    schema = Schema.load(CREDIT_DATA.with_name("credit_data.schema.json"))
    contract = infer_contract(credit_frame, "Status", "bad", schema)
    train = credit_frame.iloc[:3000]
    return Preprocessor.fit(train[contract.names], contract), credit_frame[contract.names]


def test_statistics_come_from_the_rows_it_was_fitted_on(credit_frame: pd.DataFrame) -> None:
    contract = infer_contract(credit_frame, "Status", "bad")
    head = credit_frame.iloc[:100]
    pre = Preprocessor.fit(head, contract)
    amount = next(t for t in pre.numeric if t.name == "Amount")
    expected = np.log1p(head["Amount"]) if amount.log else head["Amount"]
    assert amount.mean == pytest.approx(float(expected.mean()))
    assert amount.median == pytest.approx(float(head["Amount"].median()))


def test_training_columns_are_standardised(fitted: tuple[Preprocessor, pd.DataFrame]) -> None:
    pre, frame = fitted
    x = pre.transform(frame.iloc[:3000])
    numeric_positions = [pre.output_names.index(t.name) for t in pre.numeric]
    assert np.allclose(x[:, numeric_positions].mean(axis=0), 0.0, atol=1e-4)
    assert np.allclose(x[:, numeric_positions].std(axis=0), 1.0, atol=1e-3)


def test_heavy_tailed_money_amounts_are_log_scaled(
    fitted: tuple[Preprocessor, pd.DataFrame],
) -> None:
    pre, _ = fitted
    logged = {t.name for t in pre.numeric if t.log}
    assert "Assets" in logged
    assert "Time" not in logged


def test_missing_values_are_imputed_and_flagged(fitted: tuple[Preprocessor, pd.DataFrame]) -> None:
    pre, frame = fitted
    row = frame[frame["Income"].isna()].iloc[:1]
    x = pre.transform(row)
    assert not np.isnan(x).any()
    assert x[0, pre.output_names.index("Income__missing")] == 1.0


def test_unseen_and_missing_categories_use_the_unknown_slot(
    fitted: tuple[Preprocessor, pd.DataFrame],
) -> None:
    pre, frame = fitted
    rows = frame.iloc[:2].copy()
    rows["Home"] = ["castle", None]
    x = pre.transform(rows)
    unknown = pre.output_names.index(f"Home={UNKNOWN_CATEGORY}")
    assert x[:, unknown].tolist() == [1.0, 1.0]
    home_slots = [i for i, name in enumerate(pre.output_names) if name.startswith("Home=")]
    assert x[:, home_slots].sum(axis=1).tolist() == [1.0, 1.0]


def test_records_and_frames_encode_identically(fitted: tuple[Preprocessor, pd.DataFrame]) -> None:
    pre, frame = fitted
    sample = frame.iloc[:400]
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in sample.to_dict(orient="records")
    ]
    np.testing.assert_array_equal(pre.transform(sample), pre.transform_records(records))


def test_few_records_encode_row_by_row_exactly_as_the_vectorised_path(
    fitted: tuple[Preprocessor, pd.DataFrame],
) -> None:
    pre, frame = fitted
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    # Edge cases the data may lack: unseen and absent categories, NaN, negatives under log1p,
    # values clipped at both ends, a nullable field left out altogether.
    records += [
        {**records[0], "Home": "castle", "Job": None, "Income": float("nan")},
        {**records[1], "Assets": -5.0, "Expenses": 1e12, "Amount": -1e12},
        {k: v for k, v in records[2].items() if k != "Income"},
    ]
    assert len(records) > FEW_ROWS
    vectorised = pre.transform_records(records)
    row_by_row = np.concatenate([pre.transform_records([r]) for r in records])
    np.testing.assert_array_equal(row_by_row, vectorised)


def test_absent_nullable_column_counts_as_missing(
    fitted: tuple[Preprocessor, pd.DataFrame],
) -> None:
    pre, frame = fitted
    with_none = frame.iloc[:3].assign(Income=None)
    np.testing.assert_array_equal(
        pre.transform(with_none), pre.transform(frame.iloc[:3].drop(columns=["Income"]))
    )


def test_extreme_values_are_clipped(fitted: tuple[Preprocessor, pd.DataFrame]) -> None:
    pre, frame = fitted
    row = frame.iloc[:1].assign(Expenses=1e12)
    assert np.abs(pre.transform(row)).max() <= 10.0


def test_round_trip_preserves_the_transform(
    tmp_path, fitted: tuple[Preprocessor, pd.DataFrame]
) -> None:
    pre, frame = fitted
    pre.save(tmp_path / "pre.json")
    again = Preprocessor.load(tmp_path / "pre.json")
    np.testing.assert_array_equal(pre.transform(frame), again.transform(frame))
    assert again.output_names == pre.output_names
