"""Shared fixtures: real MLflow stores in temporary directories, and a small trained model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT_DIR = Path(__file__).resolve().parent.parent
CREDIT_DATA = PROJECT_DIR / "data" / "credit_data.csv"
LENDING_CLUB = PROJECT_DIR / "data" / "lending_club.csv"

README_APPLICANT = {
    "Seniority": 9,
    "Home": "rent",
    "Time": 60,
    "Records": "no",
    "Job": "freelance",
    "Expenses": 73,
    "Income": 129,
    "Assets": 0,
    "Debt": 0,
    "Amount": 800,
    "Price": 846,
}


@pytest.fixture(scope="session")
def credit_frame() -> pd.DataFrame:
    return pd.read_csv(CREDIT_DATA)


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite-backed MLflow tracking store and registry for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


@dataclass(frozen=True)
class TrainedStore:
    """A tracking store holding one registered champion trained on credit_data."""

    uri: str
    directory: Path
    result: object  # training.train.TrainResult


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedStore]:
    """Train a few epochs on the bundled credit_data into a session-wide MLflow store."""
    from models.network import NetworkConfig
    from training.train import TrainOptions, train

    directory = tmp_path_factory.mktemp("trained-store")
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(directory)
        result = train(
            TrainOptions(
                data=CREDIT_DATA,
                experiment="tests",
                network=NetworkConfig(epochs=4, early_stopping_patience=0),
                # A few epochs may not beat the baselines; the service tests need a champion.
                force_promote=True,
            )
        )
        yield TrainedStore(uri=uri, directory=directory, result=result)


@pytest.fixture
def use_trained_store(trained_store: TrainedStore, monkeypatch: pytest.MonkeyPatch) -> TrainedStore:
    """Point this test's MLflow client at the trained store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store.uri)
    monkeypatch.chdir(trained_store.directory)
    return trained_store


def applicant_payload(row: pd.Series, names: list[str]) -> dict[str, object]:
    """A JSON-ready request body from a data row: NumPy scalars unwrapped, missing ones omitted."""
    payload: dict[str, object] = {}
    for name in names:
        value = row[name]
        if pd.isna(value):
            continue
        payload[name] = value.item() if hasattr(value, "item") else value
    return payload
