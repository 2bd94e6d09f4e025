"""Registry checks against an unreachable tracking server must fail in seconds, not minutes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.app import _configure_tracking
from service.config import Settings

MLFLOW_HTTP_VARIABLES = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)


@pytest.fixture
def no_mlflow_http_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in MLFLOW_HTTP_VARIABLES:
        # setenv first, so that the values _configure_tracking writes are removed afterwards.
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.mark.usefixtures("no_mlflow_http_settings")
def test_the_service_bounds_mlflow_http_requests() -> None:
    _configure_tracking(Settings(registry_timeout_s=4))
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "4"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"


@pytest.mark.usefixtures("no_mlflow_http_settings")
def test_an_operators_own_mlflow_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    _configure_tracking(Settings(registry_timeout_s=4))
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"


def test_the_timeout_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANRISK_REGISTRY_TIMEOUT_S", "7")
    assert Settings().registry_timeout_s == 7
    monkeypatch.setenv("LOANRISK_REGISTRY_TIMEOUT_S", "0")
    with pytest.raises(ValueError):
        Settings()
