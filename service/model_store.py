"""Resolving the registry alias, loading versions, and swapping them atomically.

Every request takes one reference to the current :class:`LoadedModel` and uses only it, so a swap
never mixes two versions in one answer. A new version must keep the running feature contract, load,
and score a self-test applicant before it replaces the old one; otherwise the old one keeps serving.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum

from models.registered import (
    RegisteredVersion,
    RegistryError,
    RegistryFailure,
    load_registered,
    resolve_alias,
)
from service.schemas import ModelRef, RecordValidator

logger = logging.getLogger("loanrisk.model_store")


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


_REGISTRY_OUTCOMES = {
    RegistryFailure.NOT_FOUND: ReloadOutcome.NO_CHAMPION,
    RegistryFailure.UNREACHABLE: ReloadOutcome.REGISTRY_ERROR,
    RegistryFailure.BROKEN: ReloadOutcome.LOAD_ERROR,
}
# Refusals of a version for what it is, which a later look at the same version would repeat.
_REMEMBERED_REFUSALS = frozenset({ReloadOutcome.REFUSED_CONTRACT, ReloadOutcome.REFUSED_SELF_TEST})


class ModelUnavailable(RuntimeError):
    """A version that loaded is refused: another feature contract, or a failed self-test."""

    def __init__(self, outcome: ReloadOutcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class LoadedModel(RegisteredVersion):
    """One registered version, ready to serve. Immutable: a reload swaps the whole object."""

    alias: str
    records: RecordValidator  # checks request bodies straight into records; OpenAPI documents it
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.name, version=self.version, run_id=self.run_id)


def load_version(name: str, version: str, alias: str, batch_max: int) -> LoadedModel:
    """Load one registered version and the request validators for its contract (raises
    :class:`RegistryError` as :func:`load_registered` does)."""
    registered = load_registered(name, version=version)
    contract = registered.risk_model.contract
    example = registered.risk_model.metadata.get("example_applicant")
    return LoadedModel(
        **{f.name: getattr(registered, f.name) for f in fields(RegisteredVersion)},
        alias=alias,
        records=RecordValidator(contract, batch_max, example),
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


def _require_contract_of(
    candidate: LoadedModel, other: LoadedModel | None, other_described: str
) -> None:
    """Raise ``refused_contract`` when ``other`` is loaded and ``candidate``'s feature contract
    differs from it; ``other_described`` (with ``{version}`` and ``{alias}`` of ``other``) ends
    the message."""
    if other is not None and candidate.risk_model.contract.to_dict() != (
        other.risk_model.contract.to_dict()
    ):
        raise ModelUnavailable(
            ReloadOutcome.REFUSED_CONTRACT,
            f"version {candidate.version} has a different feature contract from "
            + other_described.format(version=other.version, alias=other.alias),
        )


class ModelStore:
    """Holds the current model; readers take one reference per request, so a swap is atomic.

    ``contract_of``: another store whose current model's feature contract a version must keep
    too (a challenger scored in the shadow keeps the champion's, since it scores the records the
    champion's validator made); a version with another is refused (``refused_contract``).
    """

    def __init__(
        self,
        name: str,
        alias: str,
        batch_max: int,
        on_outcome: Callable[[ReloadOutcome], None] | None = None,
        on_loaded: Callable[[LoadedModel], None] | None = None,
        contract_of: ModelStore | None = None,
    ) -> None:
        self.name = name
        self.alias = alias
        self.batch_max = batch_max
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()
        self._on_outcome = on_outcome
        self._on_loaded = on_loaded
        self._contract_of = contract_of
        self.last_error: str | None = None
        # Versions refused for what they are (another contract, a failed self-test), by number:
        # a version does not change, so while the alias points at one it is not downloaded again
        # at every poll. (A failed download may be passing, and is tried again.)
        self._refused: dict[str, ModelUnavailable] = {}

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def refresh(self) -> ReloadOutcome:
        """Check the alias now; load, verify and swap in a new version if it moved."""
        with self._lock:
            outcome = self._refresh()
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome

    def _refresh(self) -> ReloadOutcome:
        current = self._current
        version: str | None = None
        try:
            version = resolve_alias(self.name, self.alias)
            if current is not None and version == current.version:
                self.last_error = None
                return ReloadOutcome.UNCHANGED
            refused = self._refused.get(version)
            if refused is not None:
                self.last_error = str(refused)
                return refused.outcome
            candidate = load_version(self.name, version, self.alias, self.batch_max)
            _require_contract_of(
                candidate, current, "version {version}; restart the service to adopt it"
            )
            reference = None if self._contract_of is None else self._contract_of.current
            _require_contract_of(
                candidate, reference, "{alias} version {version}, whose records it would score"
            )
            self_test(candidate)
        except (RegistryError, ModelUnavailable) as exc:
            outcome = (
                exc.outcome
                if isinstance(exc, ModelUnavailable)
                else _REGISTRY_OUTCOMES[exc.failure]
            )
            self.last_error = str(exc)
            if version is not None and outcome in _REMEMBERED_REFUSALS:
                assert isinstance(exc, ModelUnavailable)
                self._refused[version] = exc
            log = logger.warning if current is not None else logger.info
            log("model check: %s (%s)", outcome.value, exc, extra={"outcome": outcome.value})
            return outcome
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
