"""Speed never changes answers: the service's lean path equals the registered pyfunc model."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.conftest import CREDIT_DATA, ClientFactory, TrainedStore, applicant_payload
from training.data import load_dataset, stratified_split

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_served_probabilities_equal_the_pyfunc_model_on_the_whole_test_split(
    use_trained_store: TrainedStore, make_client: ClientFactory
) -> None:
    dataset = load_dataset(CREDIT_DATA)
    test_rows = dataset.features.iloc[stratified_split(dataset.y, seed=0).test]
    mlflow.set_tracking_uri(use_trained_store.uri)
    pyfunc = mlflow.pyfunc.load_model("models:/loan-default@champion")
    expected = pyfunc.predict(test_rows)["probability_of_default"].to_numpy()

    applicants = [
        applicant_payload(row, list(test_rows.columns)) for _, row in test_rows.iterrows()
    ]
    served: list[float] = []
    with make_client() as client:
        for start in range(0, len(applicants), 500):
            response = client.post(
                "/v1/score/batch", json={"applicants": applicants[start : start + 500]}
            )
            assert response.status_code == 200, response.text
            served += [r["probability_of_default"] for r in response.json()["results"]]
        singles = [
            client.post("/v1/score", json=a).json()["probability_of_default"]
            for a in applicants[:50]
        ]
    assert len(served) == len(test_rows) > 800
    np.testing.assert_allclose(served, expected, atol=1e-5)
    np.testing.assert_allclose(singles, expected[:50], atol=1e-5)
    assert isinstance(test_rows, pd.DataFrame)
