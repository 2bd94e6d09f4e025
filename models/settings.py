"""Environment settings shared by training, the command line and the service.

One mechanism, pydantic-settings, reads every variable: :class:`SharedSettings` holds those that
training and the service both use (the registered model's name, the MLflow tracking URI), the
service's ``Settings`` and :class:`TrainingSettings` extend it. It lives at the bottom layer so that
``training/`` can read it without importing ``service/``.

Nothing is read at import time: each ``...Settings()`` reads the environment when it is built, so a
variable set after import (a test's ``monkeypatch.setenv``, a shell's ``export``) is seen.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL_NAME = "loan-default"
DEFAULT_EXPERIMENT = "loan-default"


class SharedSettings(BaseSettings):
    """Read from ``LOANRISK_*`` environment variables (and ``MLFLOW_TRACKING_URI``)."""

    model_config = SettingsConfigDict(
        env_prefix="LOANRISK_", extra="ignore", protected_namespaces=()
    )

    model_name: str = Field(
        DEFAULT_MODEL_NAME,
        description="Registered model that training writes and the service serves",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow tracking and registry server; default: SQLite in the working directory",
    )

    def tracking_uri(self) -> str:
        """``MLFLOW_TRACKING_URI`` if set (and not empty), else ``sqlite:///<cwd>/mlflow.db``."""
        return self.mlflow_tracking_uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


class TrainingSettings(SharedSettings):
    """What ``loanrisk train`` and ``loanrisk up`` read besides the shared variables."""

    experiment: str = Field(DEFAULT_EXPERIMENT, description="MLflow experiment of `loanrisk train`")
    mlflow_port: int = Field(
        5000,
        ge=1,
        le=65535,
        validation_alias="MLFLOW_PORT",
        description="Port of the MLflow UI that `loanrisk up` starts on a local store",
    )
