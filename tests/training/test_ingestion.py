"""Loan files as lenders export them: each kind of messy column, on a small generated file,
read to the right value and scored the same way by training, the service and the pyfunc model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression

from models.calibration import Calibrator
from models.contract import Schema, infer_contract
from models.mlflow_flavor import input_example
from models.network import MemberWeights, ScoringNetwork
from models.preprocessing import Preprocessor
from models.risk_model import RiskModel
from service.schemas import RecordValidator
from tests.conftest import CREDIT_DATA, README_APPLICANT
from training.data import DataError, load_dataset
from training.data_report import parse_numbers

SCHEMA = CREDIT_DATA.with_name("credit_data.schema.json")
APPLICANT = README_APPLICANT


def credit(rows: int = 800) -> pd.DataFrame:
    return pd.read_csv(CREDIT_DATA).head(rows)


def protecting(path: Path) -> Path:
    """``path``, with a schema file beside it naming only the target and the protected columns
    (every other column's kind is inferred)."""
    schema = {"target": "Status", "positive_label": "bad", "protected": ["Age", "Marital"]}
    path.with_name(f"{path.stem}.schema.json").write_text(json.dumps(schema))
    return path


def fitted(dataset) -> RiskModel:  # type: ignore[no-untyped-def]
    """A logistic model in the network's clothes (two ReLU units computing v . x): fast, and
    every input it was given counts."""
    preprocessor = Preprocessor.fit(dataset.features, dataset.contract)
    x = preprocessor.transform(dataset.features)
    v = LogisticRegression(max_iter=3000).fit(x, dataset.y).coef_[0].astype(np.float32)
    member = MemberWeights(
        weights=(np.stack([v, -v], axis=1), np.array([[1.0], [-1.0]], dtype=np.float32)),
        biases=(np.zeros(2, dtype=np.float32), np.zeros(1, dtype=np.float32)),
    )
    return RiskModel(dataset.contract, preprocessor, ScoringNetwork((member,)), Calibrator())


def served(model: RiskModel, body: dict) -> float:
    """The probability the service's validation and scoring path gives a JSON body."""
    record = RecordValidator(model.contract, 10).one(json.dumps(body))
    return float(model.score_records([record])[0])


def without_protected(applicant: dict) -> dict:
    return {k: v for k, v in applicant.items() if k not in ("Age", "Marital")}


# 1. Numbers read as categories


def test_a_question_mark_is_missing_and_the_column_stays_numeric(tmp_path: Path) -> None:
    frame = credit()
    frame["Income"] = frame["Income"].astype(object).where(frame["Income"].notna(), "?")
    path = tmp_path / "qmark.csv"
    frame.to_csv(path, index=False)
    dataset = load_dataset(protecting(path))
    income = dataset.contract.feature("Income")
    assert income.kind == "numeric" and income.nullable
    assert dataset.frame["Income"].isna().sum() == (frame["Income"] == "?").sum()
    model = fitted(dataset)
    low, high = served(model, APPLICANT), served(model, {**APPLICANT, "Income": 5000})
    assert low != pytest.approx(high, abs=1e-4)
    with pytest.raises(ValidationError):  # text is no longer an income
        served(model, {**APPLICANT, "Income": "129.0"})


def test_numbers_written_as_text_are_read_and_the_rest_reported(tmp_path: Path) -> None:
    frame = credit(400)
    amounts = frame["Amount"].map(lambda v: f"${v:,}").astype(object)
    amounts.iloc[[3, 7]] = ["ask branch", "tbd"]
    frame["Amount"] = amounts
    path = tmp_path / "money.csv"
    frame.to_csv(path, index=False)
    dataset = load_dataset(protecting(path))
    assert dataset.contract.feature("Amount").kind == "numeric"
    expected = pd.read_csv(CREDIT_DATA).head(400)["Amount"].astype(float)
    expected.iloc[[3, 7]] = np.nan
    pd.testing.assert_series_equal(dataset.frame["Amount"], expected, check_names=False)
    (report,) = [c for c in dataset.examined.columns if c.name == "Amount"]
    assert report.unparseable == 2 and report.examples == ("ask branch", "tbd")


def test_too_many_words_in_a_number_column_stop_the_run_naming_it(tmp_path: Path) -> None:
    frame = credit(400)
    frame["Debt"] = frame["Debt"].astype(object)
    frame.loc[frame.index[:60], "Debt"] = "unknown"
    path = tmp_path / "words.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'Debt' is mostly numbers.*schema") as caught:
        load_dataset(protecting(path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "decimal_comma", "value"),
    [("1,234", False, 1234.0), ("€ 12.5", False, 12.5), ("12,5", True, 12.5), ("7%", False, 7.0)],
)
def test_number_parsing(text: str, decimal_comma: bool, value: float) -> None:
    assert parse_numbers(pd.Series([text]), decimal_comma).iloc[0] == value


def test_parquet_decimals_are_numbers(tmp_path: Path) -> None:
    import decimal

    frame = credit(300)
    frame["Income"] = frame["Income"].map(lambda v: None if pd.isna(v) else decimal.Decimal(v))
    path = tmp_path / "decimals.parquet"
    frame.to_parquet(path, index=False)
    dataset = load_dataset(protecting(path))
    assert dataset.contract.feature("Income").kind == "numeric"
    assert dataset.frame["Income"].dtype == np.float64


# 2. Padded categories


def test_padded_and_clean_spellings_are_one_category(tmp_path: Path) -> None:
    frame = credit()
    for column in ["Home", "Job", "Records", "Marital"]:
        frame[column] = frame[column].map(lambda v: v if pd.isna(v) else f"{v:<10}")
    path = tmp_path / "padded.csv"
    frame.to_csv(path, index=False)
    shutil.copy(SCHEMA, tmp_path / "padded.schema.json")
    dataset = load_dataset(path)
    model = fitted(dataset)
    (records,) = [t for t in model.preprocessor.categorical if t.name == "Records"]
    assert set(records.categories) == {"no", "yes"}
    no = served(model, APPLICANT)
    assert served(model, {**APPLICANT, "Records": "no   "}) == no
    assert served(model, {**APPLICANT, "Records": "yes"}) != pytest.approx(no, abs=1e-4)
    # The pyfunc and file scoring read DataFrames: the same normalisation.
    assert model.score_frame(pd.DataFrame([{**APPLICANT, "Records": " no "}]))[0] == (
        pytest.approx(no, abs=1e-6)
    )
    assert model.preprocessor.to_dict()["normalisation"] == 1


def test_models_saved_before_normalisation_read_categories_as_they_did() -> None:
    old = Preprocessor.from_dict(
        {"numeric": [], "categorical": [{"name": "Home", "categories": ["rent  ", "owner"]}]}
    )
    assert old.normalisation == 0
    x = old.transform_records([{"Home": "rent  "}, {"Home": "rent"}])
    assert x.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # exact spelling, as before


# 3. pandas nullable and Arrow types


@pytest.fixture
def nullable_file(tmp_path: Path) -> Path:
    frame = credit()
    frame["Seniority"] = frame["Seniority"].astype("Int64")
    frame.loc[frame.index[::97], "Seniority"] = pd.NA
    frame["Records"] = frame["Records"].map({"yes": True, "no": False}).astype("boolean")
    frame.loc[frame.index[::89], "Records"] = pd.NA
    frame["Home"] = frame["Home"].astype("string")
    path = tmp_path / "nullable.parquet"
    frame.to_parquet(path, index=False)
    schema = json.loads(SCHEMA.read_text())
    del schema["features"]["Records"]
    (tmp_path / "nullable.schema.json").write_text(json.dumps(schema))
    return path


def test_missing_is_missing_whatever_the_dtype_and_booleans_are_booleans(
    nullable_file: Path,
) -> None:
    dataset = load_dataset(nullable_file)
    records = dataset.contract.feature("Records")
    assert records.kind == "categorical" and records.representation == "boolean"
    model = fitted(dataset)
    assert "<NA>" not in sum((t.categories for t in model.preprocessor.categorical), ())
    raw = pd.read_parquet(nullable_file)
    row = raw.index[0]  # Seniority and Records both pd.NA on this row
    assert raw.loc[row, "Seniority"] is pd.NA and raw.loc[row, "Records"] is pd.NA
    from_file = model.score_frame(raw.loc[[row]])[0]
    body = {**without_protected(raw.loc[row].drop("Status").to_dict())}
    body.update({"Seniority": None, "Records": None})
    assert served(model, body) == pytest.approx(from_file, abs=1e-6)
    # JSON true is accepted for the boolean field, text is not.
    assert 0.0 < served(model, {**APPLICANT, "Records": True}) < 1.0
    with pytest.raises(ValidationError):
        served(model, {**APPLICANT, "Records": "yes"})


def test_the_pyfunc_model_scores_the_rows_of_its_own_training_file(
    nullable_file: Path, mlflow_store: str
) -> None:
    from tests.training.test_gate import logged_uri

    dataset = load_dataset(nullable_file)
    model = fitted(dataset)
    uri = logged_uri(model, dataset)
    rows = pd.read_parquet(nullable_file).drop(columns=["Status", "Age", "Marital"])
    predicted = mlflow.pyfunc.load_model(uri).predict(rows)
    np.testing.assert_allclose(
        predicted["probability_of_default"], model.score_frame(rows), atol=1e-5
    )


def test_dates_are_refused_by_name(tmp_path: Path) -> None:
    frame = credit(200)
    frame["Opened"] = pd.date_range("2020-01-01", periods=len(frame), freq="D")
    path = tmp_path / "dates.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"column 'Opened' holds dates.*drop"):
        load_dataset(protecting(path))


# 4. Empty and constant columns, found before fitting


def test_empty_and_constant_columns_are_dropped_and_cannot_move_an_answer(
    tmp_path: Path,
) -> None:
    frame = credit()
    frame["Notes"] = None
    frame["Branch"] = "HQ"
    path = tmp_path / "extra.csv"
    frame.to_csv(path, index=False)
    dataset = load_dataset(protecting(path))
    assert "Notes" not in dataset.contract.names and "Branch" not in dataset.contract.names
    assert dataset.contract.dropped == ("Notes", "Branch")
    actions = {c.name: (c.kind, c.action) for c in dataset.examined.columns}
    assert actions["Notes"] == ("empty", "dropped")
    assert actions["Branch"] == ("constant", "dropped")
    # The service refuses the field as unknown, rather than let it in.
    model = fitted(dataset)
    with pytest.raises(ValidationError, match="Branch"):
        served(model, {**APPLICANT, "Branch": "North"})


def test_a_file_without_a_complete_row_still_gives_an_input_example(tmp_path: Path) -> None:
    frame = credit(200)
    for index, column in enumerate(["Income", "Assets", "Debt", "Home"]):
        frame.loc[frame.index[index::4], column] = np.nan
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    dataset = load_dataset(protecting(path))
    assert not dataset.features.notna().all(axis=1).any()
    example = input_example(dataset.features, dataset.contract)
    assert len(example) == 3


def test_training_drops_an_empty_column_and_succeeds(tmp_path: Path, mlflow_store: str) -> None:
    from models.network import NetworkConfig
    from training.train import TrainOptions, train

    frame = credit(600)
    frame["Notes"] = None
    path = tmp_path / "empty_col.csv"
    frame.to_csv(path, index=False)
    result = train(
        TrainOptions(
            data=path,
            target="Status",
            positive_label="bad",
            experiment="ingest",
            network=NetworkConfig(hidden_units=(4,), epochs=1, ensemble_size=1),
            force_promote=True,
        )
    )
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.run_name == "empty_col · 4 · p0.70"
    (data_input,) = run.inputs.dataset_inputs
    assert data_input.dataset.name == "empty_col.csv" and data_input.dataset.digest
    report = json.loads(
        Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="data"))
        .joinpath("report.json")
        .read_text()
    )
    (notes,) = [c for c in report["columns"] if c["name"] == "Notes"]
    assert notes["action"] == "dropped"


# 5. Identifiers and free text


def test_an_identifier_column_is_reported_and_left_out(tmp_path: Path) -> None:
    frame = credit(300)
    frame.insert(0, "loan_id", [f"L{index:06d}" for index in range(len(frame))])
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    dataset = load_dataset(protecting(path))
    assert "loan_id" not in dataset.contract.names
    (report,) = [c for c in dataset.examined.columns if c.name == "loan_id"]
    assert report.kind == "identifier" and report.action == "dropped"


# 7. Separators and encodings


def test_a_semicolon_separated_latin_1_file_is_read(tmp_path: Path) -> None:
    frame = credit(300)
    frame.loc[frame.index[0], "Job"] = "indépendant"
    path = tmp_path / "semi.csv"
    frame.to_csv(path, index=False, sep=";", encoding="latin-1")
    dataset = load_dataset(protecting(path))
    assert dataset.contract.names == load_dataset(CREDIT_DATA).contract.names
    assert dataset.frame.loc[0, "Job"] == "indépendant"
    assert dataset.contract.feature("Income").kind == "numeric"
    assert any("delimiter ';'" in note for note in dataset.examined.read_notes)


# The bundled files are clean: nothing about them changes.


def test_the_bundled_files_reach_the_fit_exactly_as_read() -> None:
    raw = pd.read_csv(CREDIT_DATA)
    dataset = load_dataset(CREDIT_DATA)
    pd.testing.assert_frame_equal(dataset.frame, raw)
    assert (
        dataset.contract.to_dict()
        == infer_contract(raw, "Status", "bad", Schema.load(SCHEMA)).to_dict()
    )
    assert all(c.action in ("kept", "target", "protected") for c in dataset.examined.columns)
