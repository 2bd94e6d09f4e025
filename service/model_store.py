"""Resolving the registry alias and holding the loaded model behind one reference."""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from models.risk_model import RiskModel
from service.schemas import ModelRef, applicant_schema

logger = logging.getLogger("loanrisk.model_store")

RISK_MODEL_SUBDIR = Path("artifacts") / "risk_model"


class ModelUnavailable(RuntimeError):
    """No model could be loaded: no such alias, registry unreachable, or a broken version."""


@dataclass(frozen=True)
class LoadedModel:
    """One registered version, ready to score. Immutable: a reload swaps the whole object."""

    name: str
    version: str
    alias: str
    run_id: str | None
    risk_model: RiskModel
    applicant: type[BaseModel]
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.name, version=self.version, run_id=self.run_id)

    def metrics(self) -> dict[str, float]:
        meta = self.risk_model.metadata
        out: dict[str, float] = {}
        for prefix in ("test", "validation"):
            for key, value in meta.get(f"{prefix}_metrics", {}).items():
                out[f"{prefix}_{key}"] = float(value)
        return out


def load_version(name: str, alias: str) -> LoadedModel:
    """Resolve ``models:/name@alias`` in the registry and load that version's scoring path."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelUnavailable(
            f"no version of {name!r} has alias {alias!r}: {exc.message}"
        ) from None
    except Exception as exc:  # the registry itself is unreachable or broken
        raise ModelUnavailable(f"registry error resolving {name}@{alias}: {exc}") from None
    try:
        with tempfile.TemporaryDirectory(prefix="loanrisk-model-") as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version.version}", dst_path=tmp
            )
            risk_model = RiskModel.load(Path(local) / RISK_MODEL_SUBDIR)
    except Exception as exc:
        raise ModelUnavailable(f"could not load {name} version {version.version}: {exc}") from None
    example = risk_model.metadata.get("example_applicant")
    return LoadedModel(
        name=name,
        version=str(version.version),
        alias=alias,
        run_id=version.run_id,
        risk_model=risk_model,
        applicant=applicant_schema(risk_model.contract, example),
    )


class ModelStore:
    """Holds the current model; readers take one reference per request, so a swap is atomic."""

    def __init__(self, name: str, alias: str) -> None:
        self.name = name
        self.alias = alias
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def load(self) -> LoadedModel | None:
        """Load the alias's version now; on failure keep what was loaded and remember why."""
        with self._lock:
            try:
                loaded = load_version(self.name, self.alias)
            except ModelUnavailable as exc:
                self.last_error = str(exc)
                logger.warning("model not loaded: %s", exc)
                return self._current
            self._current = loaded
            self.last_error = None
            logger.info("serving %s version %s (%s)", loaded.name, loaded.version, self.alias)
            return loaded

    def describe(self) -> dict[str, Any]:
        current = self._current
        return {"loaded": current is not None, "error": self.last_error}
