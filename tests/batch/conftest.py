"""A registered champion for offline scoring, and a loan file shaped like credit_data."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.conftest import CREDIT_DATA, ClientFactory, TrainedStore

MODEL_URI = "models:/loan-default@champion"


@pytest.fixture
def registered(use_trained_store: TrainedStore) -> TrainedStore:
    """The store whose ``loan-default@champion`` the tests score with (the one place that names
    the shared trained-model fixture)."""
    return use_trained_store


@pytest.fixture
def client(registered: TrainedStore, make_client: ClientFactory) -> Iterator[TestClient]:
    """The scoring service, serving the same champion."""
    with make_client() as test_client:
        yield test_client


@pytest.fixture(scope="session")
def book() -> pd.DataFrame:
    """300 credit_data applicants with a loan id and columns the model does not use."""
    frame = pd.read_csv(CREDIT_DATA).head(300).reset_index(drop=True)
    frame.insert(0, "loan_id", [f"L{i:05d}" for i in range(len(frame))])
    frame["branch"] = "north"
    return frame
