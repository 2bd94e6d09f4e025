"""The record validator accepts and refuses exactly what the OpenAPI document generated from it
says it does."""

import json

import jsonschema_rs
import pandas as pd
import pytest
from pydantic import ValidationError

from models.contract import FeatureContract, infer_contract
from service.schemas import RecordValidator
from tests.conftest import README_APPLICANT


@pytest.fixture(scope="module")
def contract(credit_frame: pd.DataFrame) -> FeatureContract:
    return infer_contract(credit_frame.drop(columns=["Age", "Marital"]), "Status", "bad")


def _accepts(validate, body: str) -> bool:
    try:
        validate(body)
    except ValidationError:
        return False
    return True


def _documented(validator: RecordValidator, name: str) -> jsonschema_rs.Validator:
    """A JSON Schema validator for the body ``name`` as the OpenAPI components give it."""
    components = validator.json_schemas()
    schema = json.loads(json.dumps(components[name]).replace("#/components/schemas/", "#/$defs/"))
    return jsonschema_rs.Draft202012Validator({**schema, "$defs": components})


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
def test_one_applicant_as_documented(contract: FeatureContract, applicant) -> None:
    validator = RecordValidator(contract, 10, README_APPLICANT)
    documented = _documented(validator, "Applicant").is_valid(applicant)
    assert _accepts(validator.one, json.dumps(applicant)) == documented


@pytest.mark.parametrize(
    "batch",
    [
        {"applicants": BODIES[:3]},
        {"applicants": BODIES},
        {"applicants": []},
        {"applicants": [README_APPLICANT] * 10},
        {"applicants": [README_APPLICANT] * 11},
        {"applicants": [README_APPLICANT], "extra": 1},
        {"people": [README_APPLICANT]},
    ],
)
def test_batches_as_documented(contract: FeatureContract, batch: dict) -> None:
    validator = RecordValidator(contract, 10, README_APPLICANT)
    documented = _documented(validator, "BatchRequest").is_valid(batch)
    assert _accepts(validator.many, json.dumps(batch)) == documented


def test_the_documented_example_is_valid(contract: FeatureContract) -> None:
    schemas = RecordValidator(contract, 10, README_APPLICANT).json_schemas()
    assert schemas["Applicant"]["examples"] == [README_APPLICANT]
    assert schemas["BatchRequest"]["examples"] == [{"applicants": [README_APPLICANT]}]


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
