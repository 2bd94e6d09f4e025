"""Resolving the registry alias, loading versions, and swapping them atomically.

Every request takes one reference to the current :class:`LoadedModel` and uses only it, so a swap
never mixes two versions in one answer. A new version must keep the running feature contract, load,
and score a self-test applicant before it replaces the old one; otherwise the old one keeps serving.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from models.risk_model import RiskModel
from service.schemas import ModelRef, RecordValidator

logger = logging.getLogger("loanrisk.model_store")

RISK_MODEL_SUBDIR = Path("artifacts") / "risk_model"


class ReloadOutcome(StrEnum):
    LOADED = "loaded"
    UNCHANGED = "unchanged"
    NO_CHAMPION = "failed_no_alias"
    REGISTRY_ERROR = "failed_registry"
    LOAD_ERROR = "failed_load"
    REFUSED_CONTRACT = "refused_contract"
    REFUSED_SELF_TEST = "refused_self_test"

    @property
    def failed(self) -> bool:
        return self not in (ReloadOutcome.LOADED, ReloadOutcome.UNCHANGED)


class ModelUnavailable(RuntimeError):
    """No model could be loaded: no such alias, registry unreachable, or a broken version."""

    def __init__(self, outcome: ReloadOutcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class LoadedModel:
    """One registered version, ready to score. Immutable: a reload swaps the whole object."""

    name: str
    version: str
    alias: str
    run_id: str | None
    risk_model: RiskModel
    records: RecordValidator  # checks request bodies straight into records; OpenAPI documents it
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


def resolve_version(name: str, alias: str) -> tuple[str, str | None]:
    """The version number and run id the alias points at."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        version = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise ModelUnavailable(
                ReloadOutcome.NO_CHAMPION, f"no version of {name!r} has alias {alias!r}"
            ) from None
        raise ModelUnavailable(ReloadOutcome.REGISTRY_ERROR, f"registry error: {exc}") from None
    except Exception as exc:  # unreachable server, broken store
        raise ModelUnavailable(
            ReloadOutcome.REGISTRY_ERROR, f"registry unreachable: {type(exc).__name__}: {exc}"
        ) from None
    return str(version.version), version.run_id


def load_version(
    name: str, version: str, alias: str, run_id: str | None, batch_max: int
) -> LoadedModel:
    """Download one registered version and load its lean scoring path."""
    import mlflow

    try:
        with tempfile.TemporaryDirectory(prefix="loanrisk-model-") as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp
            )
            risk_model = RiskModel.load(Path(local) / RISK_MODEL_SUBDIR)
    except Exception as exc:
        raise ModelUnavailable(
            ReloadOutcome.LOAD_ERROR, f"could not load {name} version {version}: {exc}"
        ) from None
    return LoadedModel(
        name=name,
        version=version,
        alias=alias,
        run_id=run_id,
        risk_model=risk_model,
        records=RecordValidator(
            risk_model.contract, batch_max, risk_model.metadata.get("example_applicant")
        ),
    )


def self_test(model: LoadedModel) -> None:
    """Score the model's own example applicant; refuse a model that cannot."""
    example = model.risk_model.metadata.get("example_applicant")
    if not example:
        raise ModelUnavailable(ReloadOutcome.REFUSED_SELF_TEST, "model has no example applicant")
    try:
        record = model.records.python(example)
        assessment = model.risk_model.assess([record])
        probability = float(assessment.probabilities[0])
    except Exception as exc:
        raise ModelUnavailable(
            ReloadOutcome.REFUSED_SELF_TEST, f"self-test scoring failed: {exc}"
        ) from None
    if not (math.isfinite(probability) and 0.0 <= probability <= 1.0):
        raise ModelUnavailable(
            ReloadOutcome.REFUSED_SELF_TEST, f"self-test gave probability {probability}"
        )


class ModelStore:
    """Holds the current model; readers take one reference per request, so a swap is atomic."""

    def __init__(
        self,
        name: str,
        alias: str,
        batch_max: int,
        on_outcome: Callable[[ReloadOutcome], None] | None = None,
        on_loaded: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self.name = name
        self.alias = alias
        self.batch_max = batch_max
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()
        self._on_outcome = on_outcome
        self._on_loaded = on_loaded
        self.last_error: str | None = None
        self.last_outcome: ReloadOutcome | None = None
        self.last_check: datetime | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def refresh(self) -> ReloadOutcome:
        """Check the alias now; load, verify and swap in a new version if it moved."""
        with self._lock:
            outcome = self._refresh()
            self.last_outcome = outcome
            self.last_check = datetime.now(UTC)
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome

    def _refresh(self) -> ReloadOutcome:
        current = self._current
        try:
            version, run_id = resolve_version(self.name, self.alias)
            if current is not None and version == current.version:
                self.last_error = None
                return ReloadOutcome.UNCHANGED
            candidate = load_version(self.name, version, self.alias, run_id, self.batch_max)
            if current is not None and candidate.risk_model.contract.to_dict() != (
                current.risk_model.contract.to_dict()
            ):
                raise ModelUnavailable(
                    ReloadOutcome.REFUSED_CONTRACT,
                    f"version {version} has a different feature contract from version "
                    f"{current.version}; restart the service to adopt it",
                )
            self_test(candidate)
        except ModelUnavailable as exc:
            self.last_error = str(exc)
            log = logger.warning if current is not None else logger.info
            log(
                "model check: %s (%s)", exc.outcome.value, exc, extra={"outcome": exc.outcome.value}
            )
            return exc.outcome
        self._current = candidate
        self.last_error = None
        logger.info(
            "serving %s version %s",
            candidate.name,
            candidate.version,
            extra={"outcome": "loaded", "alias": self.alias},
        )
        if self._on_loaded is not None:
            self._on_loaded(candidate)
        return ReloadOutcome.LOADED

    def status(self) -> dict[str, Any]:
        return {
            "last_outcome": None if self.last_outcome is None else self.last_outcome.value,
            "last_check": None if self.last_check is None else self.last_check.isoformat(),
            "last_error": self.last_error,
        }
