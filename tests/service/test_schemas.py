"""The record validator accepts and refuses exactly what the documented request models do."""

import json

import pandas as pd
import pytest
from pydantic import ValidationError

from models.contract import FeatureContract, infer_contract
from service.schemas import RecordValidator, applicant_schema, batch_schema
from tests.conftest import README_APPLICANT


@pytest.fixture(scope="module")
def contract(credit_frame: pd.DataFrame) -> FeatureContract:
    return infer_contract(credit_frame.drop(columns=["Age", "Marital"]), "Status", "bad")


def _outcome(validate, body: str) -> tuple[str, object]:
    try:
        return "valid", validate(body)
    except ValidationError as exc:
        # A body that is not an object is a "dict_type" error to one and "model_type" to the
        # other; the message is the same.
        types = {"model_type": "dict_type"}
        return "invalid", [
            (types.get(e["type"], e["type"]), e["loc"], e["msg"]) for e in exc.errors()
        ]


NULLABLE_OMITTED = {k: v for k, v in README_APPLICANT.items() if k != "Income"}

BODIES = [
    README_APPLICANT,
    NULLABLE_OMITTED,
    {**README_APPLICANT, "Income": None},
    {**README_APPLICANT, "Debt": -1},
    {**README_APPLICANT, "Debt": "12"},
    {**README_APPLICANT, "Debt": True},
    {**README_APPLICANT, "Debt": 12.5},
    {**README_APPLICANT, "Home": ""},
    {**README_APPLICANT, "Home": "x" * 201},
    {**README_APPLICANT, "Home": 3},
    {**README_APPLICANT, "Seniority": None},
    {**README_APPLICANT, "Shoe size": 44},
    {k: v for k, v in README_APPLICANT.items() if k != "Amount"},
    {},
    [],
    "applicant",
]


@pytest.mark.parametrize("applicant", BODIES)
def test_one_applicant_like_the_documented_model(contract: FeatureContract, applicant) -> None:
    model = applicant_schema(contract)
    body = json.dumps(applicant)
    expected = _outcome(lambda b: model.model_validate_json(b).model_dump(by_alias=True), body)
    assert _outcome(RecordValidator(contract, 10).one, body) == expected


@pytest.mark.parametrize(
    "batch",
    [
        {"applicants": BODIES[:3]},
        {"applicants": BODIES},
        {"applicants": []},
        {"applicants": [README_APPLICANT] * 11},
        {"applicants": [README_APPLICANT], "extra": 1},
        {"people": [README_APPLICANT]},
    ],
)
def test_batches_like_the_documented_model(contract: FeatureContract, batch: dict) -> None:
    model = batch_schema(applicant_schema(contract), 10)

    def documented(body: str) -> list[dict]:
        applicants = model.model_validate_json(body).applicants  # type: ignore[attr-defined]
        return [a.model_dump(by_alias=True) for a in applicants]

    body = json.dumps(batch)
    assert _outcome(RecordValidator(contract, 10).many, body) == _outcome(documented, body)


def test_records_hold_every_field_in_contract_order(contract: FeatureContract) -> None:
    record = RecordValidator(contract, 10).one(json.dumps(NULLABLE_OMITTED))
    assert list(record) == contract.names
    assert record["Income"] is None
    assert isinstance(record["Seniority"], float)  # JSON integers become floats, as in training


def test_python_dicts_are_checked_as_json_bodies(contract: FeatureContract) -> None:
    validator = RecordValidator(contract, 10)
    assert validator.python(README_APPLICANT) == validator.one(json.dumps(README_APPLICANT))
    with pytest.raises(ValidationError):
        validator.python({**README_APPLICANT, "Debt": -1})
