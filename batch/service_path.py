"""Everything offline scoring takes from the service and the model: one place to adapt.

Offline scoring must give the numbers ``POST /v1/score`` gives for the same applicant, so it does
not reimplement any of them: the registered version is resolved and downloaded as the service does
it, rows are checked by the service's own request validation (built from the model's contract), and
probabilities, reason codes, scores, bands and decisions come from the service's model and policy.
Every call into ``models``, ``service`` and MLflow is in this module.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from models.contract import FeatureContract

if TYPE_CHECKING:
    from models.explain import ChunkThreads

DEFAULT_MODEL_URI = "models:/loan-default@champion"
# Helper threads a chunk's scoring and explaining share with the calling thread (NumPy releases
# the GIL): one, for this project's two cores.
SCORING_HELPERS = 1


class ModelNotFound(RuntimeError):
    """The model URI names nothing that can be loaded."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: where its risk-model directory is on this machine, and what it is."""

    directory: Path  # holds contract.json, preprocessing.json, network.npz...
    name: str
    version: str


def resolve_model(uri: str, download_to: Path) -> ModelSource:
    """``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a local risk-model directory.

    A registered version is downloaded under ``download_to`` (which the caller owns). Raises
    :class:`ModelNotFound` with the registry's reason.
    """
    from models.risk_model import CONTRACT_FILE

    local = Path(uri)
    if not uri.startswith("models:/"):
        if not (local / CONTRACT_FILE).is_file():
            raise ModelNotFound(f"{uri} is neither models:/NAME@ALIAS nor a model directory")
        return ModelSource(local.resolve(), local.name, "local")

    from models.mlflow_flavor import use_tracking
    from models.registered import RegistryError, download_registered, resolve_alias

    registry = use_tracking()
    path = uri.removeprefix("models:/")
    try:
        if "@" in path:
            name, alias = path.split("@", 1)
            version = resolve_alias(name, alias)
        else:
            name, _, version = path.partition("/")
            if not version:
                raise ModelNotFound(f"{uri}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
        directory = download_registered(
            name, Path(tempfile.mkdtemp(prefix="model-", dir=download_to)), version=version
        )
    except RegistryError as exc:
        # Named: run from another directory, the default store is another (empty) file.
        raise ModelNotFound(f"{exc} (registry: {registry}, MLFLOW_TRACKING_URI)") from None
    return ModelSource(directory, name, version)


class ServicePath:
    """The service's validation, model and policy for one model directory.

    Loading imports NumPy and pydantic, never TensorFlow, so Spark executors can build one.
    """

    def __init__(self, directory: Path, reasons: int | None = None) -> None:
        from models.risk_model import RiskModel
        from service.config import Settings
        from service.decisioning import Policy
        from service.schemas import RecordValidator

        settings = Settings()
        self.model = RiskModel.load(directory)
        self.contract: FeatureContract = self.model.contract
        self.reasons = settings.max_reasons if reasons is None else reasons
        self.reason_steps = settings.reason_steps
        self.policy = Policy.from_settings(settings)
        self._validator = RecordValidator(self.contract, batch_max=1)
        self._threads: ChunkThreads | None = None

    def threads(self) -> ChunkThreads:
        """One helper thread beside the caller (two cores), started on first use."""
        from models.explain import ChunkThreads

        if self._threads is None:
            self._threads = ChunkThreads(SCORING_HELPERS)
        return self._threads

    def rejection(self, body: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
        """The service's 422 message and details for one applicant's JSON body, or None if valid.

        ``body`` is what a client would send: NaN and infinities are written as JSON allows
        Python to (``NaN``, ``Infinity``), which the service's parser reads.
        """
        from pydantic import ValidationError

        from service.errors import validation_error_body

        try:
            self._validator.one(json.dumps(body))
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            error = validation_error_body(errors)["error"]
            return error["message"], error["details"]
        return None

    def assess(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[np.ndarray, list[str], list[float], list[str], list[str]]:
        """Probability of default (float64), reason codes (a JSON array each), score, band and
        decision of validated records, as a ``POST /v1/score/batch`` of them would give."""
        assessment = self.model.assess_serialised(records, self.reasons, self.reason_steps)
        probabilities = np.asarray(assessment.probabilities, dtype=np.float64)
        if not np.isfinite(probabilities).all():
            raise RuntimeError("the model gave a probability that is not a number")
        scores, bands, decisions = self.policy.apply(probabilities.tolist())
        return probabilities, assessment.reason_codes_json(), scores, bands, decisions

    def assess_columns(
        self, columns: Mapping[str, np.ndarray | pd.Categorical]
    ) -> tuple[np.ndarray, pa.StringArray, list[float], list[str], list[str]]:
        """:meth:`assess` of validated applicants given column-wise (a float64 array, NaN where
        omitted, per number; a ``pd.Categorical`` per category): the same answers, without a
        dict per applicant; the reason codes as an Arrow string array."""
        assessment = self.model.assess_columns(
            columns, self.reasons, self.reason_steps, self.threads()
        )
        probabilities = np.asarray(assessment.probabilities, dtype=np.float64)
        if not np.isfinite(probabilities).all():
            raise RuntimeError("the model gave a probability that is not a number")
        scores, bands, decisions = self.policy.apply(probabilities.tolist())
        return probabilities, assessment.reason_codes, scores, bands, decisions
