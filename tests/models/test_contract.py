import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.contract import ContractError, FeatureContract, Schema, infer_contract
from tests.conftest import CREDIT_DATA


def test_inference_types_numeric_and_text_columns(credit_frame: pd.DataFrame) -> None:
    contract = infer_contract(credit_frame, "Status", "bad")
    kinds = {f.name: f.kind for f in contract.features}
    assert kinds["Income"] == "numeric"
    assert kinds["Seniority"] == "numeric"
    assert kinds["Home"] == "categorical"
    assert kinds["Records"] == "categorical"
    assert "Status" not in kinds


def test_inference_marks_columns_with_missing_values_nullable(credit_frame: pd.DataFrame) -> None:
    contract = infer_contract(credit_frame, "Status", "bad")
    assert contract.feature("Income").nullable
    assert contract.feature("Home").nullable
    assert not contract.feature("Amount").nullable


def test_inference_bounds_never_negative_columns_at_zero() -> None:
    frame = pd.DataFrame({"y": [0, 1, 0], "amount": [1.0, 5.0, 0.0], "delta": [-1.0, 2.0, 3.0]})
    contract = infer_contract(frame, "y", "1")
    assert contract.feature("amount").minimum == 0.0
    assert contract.feature("delta").minimum is None


def test_schema_excludes_protected_and_dropped_columns(credit_frame: pd.DataFrame) -> None:
    schema = Schema(protected=["Age", "Marital"], drop=["Price"])
    contract = infer_contract(credit_frame, "Status", "bad", schema)
    assert not {"Age", "Marital", "Price"} & set(contract.names)
    assert contract.protected == ("Age", "Marital")
    assert contract.dropped == ("Price",)


def test_bundled_schema_declares_bounds_and_protects_age_and_marital(
    credit_frame: pd.DataFrame,
) -> None:
    schema = Schema.load(CREDIT_DATA.with_name("credit_data.schema.json"))
    contract = infer_contract(credit_frame, "Status", "bad", schema)
    assert contract.feature("Time").exclusive_minimum == 0
    assert contract.feature("Income").minimum == 0
    assert set(contract.protected) == {"Age", "Marital"}
    assert "Age" not in contract.names and "Marital" not in contract.names


def test_schema_can_force_a_numeric_code_to_be_categorical() -> None:
    frame = pd.DataFrame({"y": [0, 1, 1], "region": [1, 2, 3]})
    contract = infer_contract(frame, "y", "1", Schema(features={"region": {"kind": "categorical"}}))
    assert contract.feature("region").kind == "categorical"


def test_schema_naming_an_absent_column_is_an_error(credit_frame: pd.DataFrame) -> None:
    with pytest.raises(ContractError, match="Nope"):
        infer_contract(credit_frame, "Status", "bad", Schema(protected=["Nope"]))


def test_schema_declaring_text_numeric_is_an_error() -> None:
    frame = pd.DataFrame({"y": [0, 1], "home": ["rent", "own"]})
    with pytest.raises(ContractError, match="holds text"):
        infer_contract(frame, "y", "1", Schema(features={"home": {"kind": "numeric"}}))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"target": "y", "colour": 1}', "unknown keys"),
        ('{"features": {"a": {"kind": "text"}}}', "kind"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_bad_schema_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "schema.json"
    path.write_text(content)
    with pytest.raises(ContractError, match=message):
        Schema.load(path)


def test_contract_round_trips_through_json(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    contract = infer_contract(credit_frame, "Status", "bad", Schema(protected=["Age"]))
    contract.save(tmp_path / "contract.json")
    assert FeatureContract.load(tmp_path / "contract.json") == contract
    assert json.loads((tmp_path / "contract.json").read_text())["protected"] == ["Age"]


def test_boolean_columns_are_categorical() -> None:
    frame = pd.DataFrame({"y": [0, 1, 0], "flag": np.array([True, False, True])})
    assert infer_contract(frame, "y", "1").feature("flag").kind == "categorical"


@pytest.mark.parametrize(
    ("content", "path"),
    [
        ('{"features": {"a": {"kind": "numeric", "minimum": "x"}}}', "features.a.minimum"),
        ('{"features": {"a": {"kind": "numeric", "colour": 1}}}', "features.a: unknown keys"),
        ('{"features": {"a": {"maximum": 3}}}', "features.a.kind: Field required"),
        ('{"protected": "Age"}', "protected: Input should be a valid list"),
    ],
)
def test_schema_file_errors_name_the_field_on_one_line(
    tmp_path: Path, content: str, path: str
) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(content)
    with pytest.raises(ContractError) as caught:
        Schema.load(schema)
    message = str(caught.value)
    assert path in message and str(schema) in message
    assert "\n" not in message


def test_a_numeric_positive_label_in_a_schema_file_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text('{"target": "y", "positive_label": 1}')
    assert Schema.load(path).positive_label == "1"


# A contract.json exactly as registered models carry it.
SAVED_CONTRACT = """{
  "version": 1,
  "target": "y",
  "positive_label": "bad",
  "protected": [
    "Age"
  ],
  "dropped": [],
  "features": [
    {
      "name": "amount",
      "kind": "numeric",
      "nullable": true,
      "minimum": null,
      "exclusive_minimum": null,
      "maximum": 1000000.0,
      "description": "loan amount"
    },
    {
      "name": "home",
      "kind": "categorical",
      "nullable": false,
      "minimum": null,
      "exclusive_minimum": null,
      "maximum": null,
      "description": ""
    }
  ]
}
"""


def test_a_saved_contract_loads_and_saves_back_to_the_same_json(tmp_path: Path) -> None:
    (tmp_path / "contract.json").write_text(SAVED_CONTRACT)
    contract = FeatureContract.load(tmp_path / "contract.json")
    assert contract.protected == ("Age",)
    assert contract.feature("amount").maximum == 1e6 and contract.feature("amount").nullable
    assert contract.feature("home").kind == "categorical"
    contract.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == SAVED_CONTRACT


def test_a_damaged_contract_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "contract.json").write_text(SAVED_CONTRACT.replace('"categorical"', '"text"'))
    with pytest.raises(ValueError, match=r"features\.1\.kind"):
        FeatureContract.load(tmp_path / "contract.json")
