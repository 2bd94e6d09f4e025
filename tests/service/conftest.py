from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.conftest import TrainedStore


@pytest.fixture
def client(use_trained_store: TrainedStore) -> Iterator[TestClient]:
    """The app with the trained champion loaded (start-up runs inside the context manager)."""
    with TestClient(create_app(Settings())) as test_client:
        yield test_client


@pytest.fixture
def empty_client(mlflow_store: str) -> Iterator[TestClient]:
    """The app against a registry with no champion."""
    with TestClient(create_app(Settings())) as test_client:
        yield test_client
