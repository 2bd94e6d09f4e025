"""One registered version of the risk model, from the MLflow model registry.

A registered version is the pyfunc model :func:`models.mlflow_flavor.log_risk_model` logs. MLflow
keeps a pyfunc's artifacts under ``artifacts/<key>``, so a downloaded version holds its
:class:`~models.risk_model.RiskModel` directory at ``artifacts/risk_model``: this module is the one
place that knows it. The service, the promotion gate, the benchmark and the tests load versions
through :func:`load_registered`.

MLflow is imported inside the functions that talk to the registry: importing this module is cheap.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .risk_model import RiskModel

# The key the pyfunc logs the model directory under (``context.artifacts[RISK_MODEL_ARTIFACT]``).
RISK_MODEL_ARTIFACT = "risk_model"
# The training run's test-split probabilities and outcomes (training.stages.evaluate writes it,
# loanrisk monitor reads it); runs from before it existed have none.
TEST_SCORES_ARTIFACT = "evaluation/test_scores.parquet"


class RegistryFailure(StrEnum):
    NOT_FOUND = "not_found"  # no such model, version or alias
    UNREACHABLE = "unreachable"  # the registry failed or could not be reached
    BROKEN = "broken"  # the version was found but could not be downloaded or loaded


class RegistryError(RuntimeError):
    """A registered version could not be had; ``failure`` says at which step."""

    def __init__(self, failure: RegistryFailure, message: str) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered version, loaded for scoring (NumPy path; TensorFlow is not imported).

    ``metrics`` are the evaluation metrics the training run saved with the model, flattened as
    ``test_<metric>`` and ``validation_<metric>`` (floats; empty for a model saved without them).
    """

    name: str
    version: str
    run_id: str | None
    risk_model: RiskModel
    metrics: dict[str, float]


def risk_model_dir(downloaded: Path) -> Path:
    """The RiskModel directory inside a downloaded registered version."""
    return downloaded / "artifacts" / RISK_MODEL_ARTIFACT


def resolve_alias(name: str, alias: str) -> str:
    """The version number ``alias`` of model ``name`` points at.

    Raises :class:`RegistryError`: ``NOT_FOUND`` when the model or the alias does not exist,
    ``UNREACHABLE`` when the registry fails.
    """
    return str(_model_version(name, alias=alias).version)


def load_registered(
    name: str, *, alias: str | None = None, version: str | None = None
) -> RegisteredVersion:
    """Resolve one version of ``name`` (by ``alias`` or by ``version``: exactly one), download it
    to a temporary directory and load its RiskModel.

    Raises :class:`RegistryError`: ``NOT_FOUND`` or ``UNREACHABLE`` while resolving, ``BROKEN``
    when the version's files cannot be downloaded or do not load.
    """
    found = _model_version(name, alias=alias, version=version)
    number = str(found.version)
    with tempfile.TemporaryDirectory(prefix="loanrisk-model-") as tmp:
        local = download_registered(name, Path(tmp), version=number)
        try:
            risk_model = RiskModel.load(local)
        except Exception as exc:
            raise RegistryError(
                RegistryFailure.BROKEN, f"could not load {name} version {number}: {exc}"
            ) from None
    return RegisteredVersion(
        name=name,
        version=number,
        run_id=found.run_id,
        risk_model=risk_model,
        metrics=_saved_metrics(risk_model.metadata),
    )


def download_registered(
    name: str, dst: Path, *, alias: str | None = None, version: str | None = None
) -> Path:
    """Download one version of ``name`` (by ``alias`` or ``version``) under ``dst`` and return its
    RiskModel directory (what :meth:`RiskModel.load` and ``KerasReference`` take).

    Raises :class:`RegistryError` (``BROKEN``) when the download fails.
    """
    import mlflow

    # No progress bar on stderr: the service logs JSON lines and `--json` commands print one
    # document (an operator's own setting wins).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = _model_uri(name, alias, version)
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst))
    except Exception as exc:
        label = f"alias {alias}" if version is None else f"version {version}"
        raise RegistryError(
            RegistryFailure.BROKEN, f"could not load {name} {label}: {exc}"
        ) from None
    return risk_model_dir(Path(local))


def _model_uri(name: str, alias: str | None, version: str | None) -> str:
    if (alias is None) == (version is None):
        raise ValueError("give exactly one of alias and version")
    return f"models:/{name}@{alias}" if version is None else f"models:/{name}/{version}"


def _model_version(name: str, *, alias: str | None = None, version: str | None = None) -> Any:
    """The registry's record of one version (an MLflow ``ModelVersion``)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    _model_uri(name, alias, version)  # exactly one of them
    try:
        client = MlflowClient()
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            what = f"has alias {alias!r}" if alias is not None else f"is numbered {version}"
            raise RegistryError(
                RegistryFailure.NOT_FOUND, f"no version of {name!r} {what}"
            ) from None
        raise RegistryError(RegistryFailure.UNREACHABLE, f"registry error: {exc}") from None
    except Exception as exc:  # unreachable server, broken store
        raise RegistryError(
            RegistryFailure.UNREACHABLE, f"registry unreachable: {type(exc).__name__}: {exc}"
        ) from None


def _saved_metrics(metadata: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for prefix in ("test", "validation"):
        for key, value in metadata.get(f"{prefix}_metrics", {}).items():
            out[f"{prefix}_{key}"] = float(value)
    return out
