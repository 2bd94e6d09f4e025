"""The whole flow on real processes: train with the command, serve over HTTP, compare answers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from models.registered import download_registered
from models.risk_model import KerasReference
from tests.conftest import CREDIT_DATA, applicant_payload
from tests.e2e.conftest import BIN, free_port, running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """``loanrisk train`` into a fresh SQLite store, as a user would run it."""
    directory = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    completed = subprocess.run(
        [str(BIN / "loanrisk"), "train", "--epochs", "3", "--experiment", "e2e", "--force-promote"],
        cwd=directory,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "loan-default version 1 (alias champion)" in completed.stdout
    return {"uri": uri, "directory": directory}


@pytest.fixture(scope="module")
def test_rows() -> pd.DataFrame:
    frame = pd.read_csv(CREDIT_DATA)
    return frame.sample(40, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def keras_reference(
    trained: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> KerasReference:
    """The registered champion's own Keras network, behind its saved preprocessing."""
    mlflow.set_tracking_uri(str(trained["uri"]))
    directory = download_registered(
        "loan-default", tmp_path_factory.mktemp("download"), alias="champion"
    )
    return KerasReference(directory)


def test_http_service_answers_equal_the_keras_model(
    trained: dict[str, object],
    test_rows: pd.DataFrame,
    keras_reference: KerasReference,
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"MLFLOW_TRACKING_URI": str(trained["uri"]), "LOANRISK_PORT": str(port)}
    expected = keras_reference.score_frame(test_rows)
    names = keras_reference.contract.names
    server = running([str(BIN / "loanrisk"), "serve"], f"{base}/ready", env, tmp_path / "serve.log")
    with server, httpx.Client(base_url=base, timeout=10.0) as client:
        assert client.get("/ready").json()["model"]["version"] == "1"
        served = []
        for _, row in test_rows.iterrows():
            response = client.post("/v1/score", json=applicant_payload(row, names))
            assert response.status_code == 200, response.text
            served.append(response.json()["probability_of_default"])
        bad = client.post(
            "/v1/score", json={**applicant_payload(test_rows.iloc[0], names), "Debt": -3}
        )
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "Debt"
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_pyfunc_load_returns_the_probability_of_default(
    trained: dict[str, object], test_rows: pd.DataFrame, keras_reference: KerasReference
) -> None:
    mlflow.set_tracking_uri(str(trained["uri"]))
    model = mlflow.pyfunc.load_model("models:/loan-default@champion")
    features = test_rows.drop(columns=["Status", "Age", "Marital"])
    predicted = model.predict(features)
    assert list(predicted.columns) == ["probability_of_default"]
    np.testing.assert_allclose(
        predicted["probability_of_default"], keras_reference.score_frame(test_rows), atol=1e-6
    )


def test_mlflow_models_serve_scores_the_registered_model(
    trained: dict[str, object],
    test_rows: pd.DataFrame,
    keras_reference: KerasReference,
    tmp_path: Path,
) -> None:
    port = free_port()
    command = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        "models:/loan-default@champion",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    records = [
        applicant_payload(row, keras_reference.contract.names) for _, row in test_rows.iterrows()
    ]
    # MLflow launches `uvicorn` by name, as it would inside an activated virtual environment.
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {"MLFLOW_TRACKING_URI": str(trained["uri"]), "PATH": path}
    with running(command, f"http://127.0.0.1:{port}/ping", env, tmp_path / "mlflow-serve.log"):
        response = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_records": records},
            timeout=60.0,
        )
    assert response.status_code == 200, response.text
    predictions = [p["probability_of_default"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(predictions, keras_reference.score_frame(test_rows), atol=1e-6)
