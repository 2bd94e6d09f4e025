"""The example applicants the product publishes (MLflow's input example, the OpenAPI example, the
self-test applicant) are synthetic: made from the training rows' distribution, never one of them."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.mlflow_flavor import input_example
from training.data import Dataset, load_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def credit() -> Dataset:
    return load_dataset(ROOT / "data" / "credit_data.csv", "Status", "bad", None)


def test_no_published_example_is_a_training_row(credit: Dataset) -> None:
    example = input_example(credit.features, credit.contract)
    rows = credit.features[credit.contract.names]
    assert len(example) == 3
    assert rows.merge(example, how="inner").empty
    # The deliberately broken variant (a training row published) is caught by the same check.
    assert not rows.merge(rows.iloc[[7]], how="inner").empty


def test_the_first_example_is_the_typical_applicant(credit: Dataset) -> None:
    example = input_example(credit.features, credit.contract)
    rows = credit.features
    for spec in credit.contract.numeric:
        observed = rows[spec.name].dropna()
        assert example.loc[0, spec.name] == np.quantile(observed, 0.5, method="nearest")
        assert example.loc[0, spec.name] in set(observed)  # an observed, correctly typed value
    for spec in credit.contract.categorical:
        assert example.loc[0, spec.name] == rows[spec.name].mode().iloc[0]
        assert isinstance(example.loc[0, spec.name], str)


def test_an_input_without_any_value_is_named() -> None:
    frame = pd.DataFrame({"Income": [1.0, 2.0, 3.0] * 10, "Home": ["rent", "own", None] * 10})
    frame["Status"] = ["good", "bad"] * 15
    from models.contract import infer_contract

    contract = infer_contract(frame, "Status", "bad")
    empty = frame.assign(Home=None)
    with pytest.raises(ValueError, match="Home"):
        input_example(empty, contract)
