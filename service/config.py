"""Service settings: every knob an environment variable with a typed default."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Read from ``LOANRISK_*`` environment variables (and ``MLFLOW_TRACKING_URI``)."""

    model_config = SettingsConfigDict(
        env_prefix="LOANRISK_", extra="ignore", protected_namespaces=()
    )

    model_name: str = Field("loan-default", description="Registered model to serve")
    model_alias: str = Field("champion", description="Registry alias to serve")
    mlflow_tracking_uri: str | None = Field(
        None,
        validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow tracking and registry server; default: SQLite in the working directory",
    )
    host: str = Field("127.0.0.1", description="Bind address of `loanrisk serve`")
    port: int = Field(8000, ge=1, le=65535, description="Port of `loanrisk serve`")
    workers: int = Field(1, ge=1, description="uvicorn worker processes")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO")
    access_log: bool = Field(False, description="uvicorn's per-request access log")
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body accepted; larger answers 413"
    )
