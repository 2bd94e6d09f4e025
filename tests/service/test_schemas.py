"""The record validator accepts and refuses exactly what the OpenAPI document generated from it
says it does."""

import json

import jsonschema_rs
import pandas as pd
import pytest
from fastapi.testclient import TestClient
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


@pytest.mark.parametrize("first_invalid", [True, False])
def test_a_repeated_key_is_refused_naming_it(client: TestClient, first_invalid: bool) -> None:
    """``"Debt": -5`` and again ``"Debt": 0``: parsers keep the last, so the first was never
    checked. Refused whichever comes last, and a colon inside a value does not hide it."""
    fields = [f'"{k}": {json.dumps(v)}' for k, v in README_APPLICANT.items() if k != "Debt"]
    debts = ['"Debt": -5', '"Debt": 0'] if first_invalid else ['"Debt": 0', '"Debt": 0']
    body = "{" + ", ".join([*fields, *debts]) + "}"
    answer = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["details"][0]["field"] == "Debt"
    assert "Debt" in error["message"]


def test_a_repeated_key_in_a_batch_names_the_applicant(client: TestClient) -> None:
    one = json.dumps(README_APPLICANT)
    twice = one[:-1] + ', "Income": 129}'
    body = '{"applicants": [' + one + ", " + twice + "]}"
    answer = client.post(
        "/v1/score/batch", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "applicants[1].Income"
    repeated_list = '{"applicants": [' + one + '], "applicants": [' + one + "]}"
    answer = client.post(
        "/v1/score/batch", content=repeated_list, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "applicants"


def test_colons_inside_values_do_not_make_a_repeated_key(client: TestClient) -> None:
    from service.schemas import refuse_repeated_keys

    refuse_repeated_keys(b'{"Home": "rent: flat", "Job": "a:b:c"}', 2)  # no error
