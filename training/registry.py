"""Registering model versions and moving aliases in the MLflow model registry."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models.settings import SharedSettings

CHAMPION = "champion"


def model_name() -> str:
    """The registered model's name: ``LOANRISK_MODEL_NAME``, else ``loan-default``."""
    return SharedSettings().model_name


@dataclass(frozen=True)
class Registration:
    name: str
    version: str
    alias: str


def register(model_uri: str, name: str, alias: str = CHAMPION) -> Registration:
    """Register ``model_uri`` as a new version of ``name`` and point ``alias`` at it."""
    version = mlflow.register_model(model_uri, name)
    MlflowClient().set_registered_model_alias(name, alias, version.version)
    return Registration(name=name, version=str(version.version), alias=alias)


def alias_version(name: str, alias: str = CHAMPION) -> str | None:
    """The version ``alias`` points at, or None when the model or the alias does not exist."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
