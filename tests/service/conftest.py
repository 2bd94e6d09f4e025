from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ClientFactory, TrainedStore


@pytest.fixture
def client(use_tiny_store: TrainedStore, make_client: ClientFactory) -> Iterator[TestClient]:
    """The app with the tiny champion loaded (start-up runs inside the context manager)."""
    with make_client() as test_client:
        yield test_client


@pytest.fixture
def empty_client(mlflow_store: str, make_client: ClientFactory) -> Iterator[TestClient]:
    """The app against a registry with no champion."""
    with make_client() as test_client:
        yield test_client
