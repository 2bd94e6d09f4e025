from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.conftest import TrainedStore

ClientFactory = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def make_client(tmp_path: Path) -> ClientFactory:
    """Start the app with settings overrides; the audit trail lives in this test's directory."""

    @contextmanager
    def factory(**overrides: Any) -> Iterator[TestClient]:
        settings = Settings(
            **{
                "audit_db_url": f"sqlite:///{tmp_path / 'audit.db'}",
                "reload_interval_s": 0,
                **overrides,
            }
        )
        with TestClient(create_app(settings)) as test_client:
            yield test_client

    return factory


@pytest.fixture
def client(use_trained_store: TrainedStore, make_client: ClientFactory) -> Iterator[TestClient]:
    """The app with the trained champion loaded (start-up runs inside the context manager)."""
    with make_client() as test_client:
        yield test_client


@pytest.fixture
def empty_client(mlflow_store: str, make_client: ClientFactory) -> Iterator[TestClient]:
    """The app against a registry with no champion."""
    with make_client() as test_client:
        yield test_client
