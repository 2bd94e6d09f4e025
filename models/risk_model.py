"""RiskModel: the feature contract, the fitted preprocessing and the trained network, as one unit.

Saved as one directory, which is what the MLflow model carries as its artifact:

    contract.json        the raw input fields the model accepts
    preprocessing.json   the statistics fitted on the training split
    network.npz          the trained weights, for the lean NumPy scoring path (one network, or
                         the members of a seed ensemble whose logits are averaged)
    network.keras        the same network as Keras saved it, the reference implementation
    reference.json       the training population: explanation baseline and drift (PSI) bins
    calibration.json     the calibrator fitted on the validation split, applied to the logit by
                         both scoring paths (absent in models saved before calibration existed)
    metadata.json        training configuration and metrics, for people and for /v1/model

Both scoring paths return *calibrated* probabilities of default.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .calibration import Calibrator
from .contract import FeatureContract
from .explain import MAX_REASONS, ChunkThreads, Explainer, Reason
from .network import ScoringNetwork, import_keras, keras_logits
from .preprocessing import Preprocessor
from .reference import TrainingReference

CONTRACT_FILE = "contract.json"
PREPROCESSING_FILE = "preprocessing.json"
WEIGHTS_FILE = "network.npz"
KERAS_FILE = "network.keras"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.json"
CALIBRATION_FILE = "calibration.json"
# Many rows without reasons are scored this many at a time: a block's activations (members x rows x
# units, float32) stay in the CPU's cache. A whole 65,536-row chunk in one product took ~3x longer
# on the credit_data model (measured with a profile, docs/scoring-files.md). Logits may differ from
# one whole-matrix product in the last float32 bits (as between any two row counts).
SCORE_BLOCK_ROWS = 4096


class ModelFormatError(RuntimeError):
    """A model directory is incomplete or inconsistent."""


@dataclass(frozen=True)
class Assessment:
    """Probabilities of default and, per applicant, the reasons that raise the risk."""

    probabilities: np.ndarray
    reasons: list[list[Reason]]


@dataclass(frozen=True)
class SerialisedAssessment:
    """An :class:`Assessment` whose reason codes come as JSON: one array per applicant.

    They are written on request, a slice of applicants at a time if the caller likes, so that it
    can do other work between slices.
    """

    probabilities: np.ndarray
    _write_reasons: Callable[[int, int], list[str]]

    def reason_codes_json(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The reason codes of applicants ``start`` to ``stop`` (all by default)."""
        return self._write_reasons(start, len(self.probabilities) if stop is None else stop)


@dataclass(frozen=True)
class ColumnarAssessment:
    """:meth:`RiskModel.assess_columns`'s answer: calibrated probabilities of default (float64,
    one per applicant) and the reason codes as an Arrow string array, one JSON array each."""

    probabilities: np.ndarray
    reason_codes: pa.StringArray


@dataclass
class RiskModel:
    """Scores raw applicant records with exactly the transform the network was trained on."""

    contract: FeatureContract
    preprocessor: Preprocessor
    network: ScoringNetwork
    metadata: dict[str, Any] = field(default_factory=dict)
    calibrator: Calibrator = field(default_factory=Calibrator)
    reference: TrainingReference | None = None

    def __post_init__(self) -> None:
        if self.network.n_inputs != self.preprocessor.width:
            raise ModelFormatError(
                f"network expects {self.network.n_inputs} inputs, "
                f"preprocessing produces {self.preprocessor.width}"
            )

    def score_matrix(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability of default for rows already encoded by the preprocessor."""
        return self.calibrator.apply(self.network.mean_logits(x))

    def score_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Calibrated probability of default for each record (a mapping of raw field to value)."""
        return self.score_matrix(self.preprocessor.transform_records(records))

    @cached_property
    def explainer(self) -> Explainer:
        reference = self.reference
        return Explainer(
            self.contract,
            self.preprocessor,
            self.network,
            baseline=None if reference is None else reference.baseline,
            typical=None if reference is None else reference.typical_values(),
            logit_scale=self.calibrator.logit_scale,
        )

    def assess(
        self,
        records: Sequence[Mapping[str, Any]],
        max_reasons: int = MAX_REASONS,
        reason_steps: int | None = None,
        threads: ChunkThreads | None = None,
    ) -> Assessment:
        """Probabilities and reason codes for a batch of records, in one vectorised pass
        (a large batch's chunks shared with ``threads``, when given)."""
        probabilities, contributions = self._explained(records, max_reasons, reason_steps, threads)
        if contributions is None:
            return Assessment(probabilities, [])
        reasons = self.explainer.reasons_from(contributions, records, max_reasons)
        return Assessment(probabilities, reasons)

    def assess_serialised(
        self,
        records: Sequence[Mapping[str, Any]],
        max_reasons: int = MAX_REASONS,
        reason_steps: int | None = None,
        threads: ChunkThreads | None = None,
    ) -> SerialisedAssessment:
        """:meth:`assess`, with each applicant's reason codes as a JSON array, ready to send."""
        probabilities, contributions = self._explained(records, max_reasons, reason_steps, threads)
        explainer = self.explainer

        def write_reasons(start: int, stop: int) -> list[str]:
            if contributions is None:
                return ["[]"] * (stop - start)
            return explainer.reason_codes_json(
                contributions[start:stop], records[start:stop], max_reasons
            )

        return SerialisedAssessment(probabilities, write_reasons)

    def assess_columns(
        self,
        columns: Mapping[str, np.ndarray | pd.Categorical],
        max_reasons: int = MAX_REASONS,
        reason_steps: int | None = None,
        threads: ChunkThreads | None = None,
    ) -> ColumnarAssessment:
        """:meth:`assess_serialised` of applicants given column-wise, with no dict per applicant
        (reason codes as :meth:`Explainer.reason_codes_json_columns` writes them).

        ``columns`` maps each input field to one value per applicant: a float64 array (NaN where
        omitted) for a number, a ``pd.Categorical`` (missing where omitted) for a category; an
        absent field is omitted for everyone. The matrix, and so every probability and reason,
        is the one :meth:`assess_serialised` builds from records holding the same values (a float
        or None; the text or None); tests/batch/test_columnar.py holds the two paths equal.
        """
        x = self.preprocessor.transform(columns)
        if not max_reasons:
            starts = list(range(0, len(x), SCORE_BLOCK_ROWS))

            def block(start: int) -> np.ndarray:
                return self.network.mean_logits(x[start : start + SCORE_BLOCK_ROWS])

            parts = threads.map(block, starts) if threads else [block(start) for start in starts]
            probabilities = self.calibrator.apply(np.concatenate(parts) if parts else np.empty(0))
            return ColumnarAssessment(probabilities, pa.repeat(pa.scalar("[]"), len(x)))
        logits, contributions = self.explainer.logits_and_contributions(x, reason_steps, threads)
        reason_codes = self.explainer.reason_codes_json_columns(contributions, columns, max_reasons)
        return ColumnarAssessment(self.calibrator.apply(logits), reason_codes)

    def _explained(
        self,
        records: Sequence[Mapping[str, Any]],
        max_reasons: int,
        reason_steps: int | None,
        threads: ChunkThreads | None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated probabilities and, when reasons are wanted, per-field contributions."""
        x = self.preprocessor.transform_records(records)
        if not max_reasons:
            return self.score_matrix(x), None
        logits, contributions = self.explainer.logits_and_contributions(x, reason_steps, threads)
        return self.calibrator.apply(logits), contributions

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of default for each row of a DataFrame of raw fields."""
        require_columns(self.contract, frame)
        return self.score_matrix(self.preprocessor.transform(frame))

    def save(self, directory: Path, keras_model: Any | None = None) -> None:
        """Write the model directory; ``keras_model`` adds the reference Keras network."""
        directory.mkdir(parents=True, exist_ok=True)
        self.contract.save(directory / CONTRACT_FILE)
        self.preprocessor.save(directory / PREPROCESSING_FILE)
        self.network.save(directory / WEIGHTS_FILE)
        self.calibrator.save(directory / CALIBRATION_FILE)
        (directory / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, default=str))
        if self.reference is not None:
            self.reference.save(directory / REFERENCE_FILE)
        if keras_model is not None:
            keras_model.save(directory / KERAS_FILE)

    @classmethod
    def load(cls, directory: Path) -> RiskModel:
        """Load the lean scoring path; TensorFlow is not imported."""
        required = [CONTRACT_FILE, PREPROCESSING_FILE, WEIGHTS_FILE]
        absent = [name for name in required if not (directory / name).is_file()]
        if absent:
            raise ModelFormatError(f"model directory {directory} lacks {absent}")
        metadata_path = directory / METADATA_FILE
        reference_path = directory / REFERENCE_FILE
        return cls(
            contract=FeatureContract.load(directory / CONTRACT_FILE),
            preprocessor=Preprocessor.load(directory / PREPROCESSING_FILE),
            network=ScoringNetwork.load(directory / WEIGHTS_FILE),
            metadata=json.loads(metadata_path.read_text()) if metadata_path.is_file() else {},
            reference=(
                TrainingReference.load(reference_path) if reference_path.is_file() else None
            ),
            calibrator=load_calibrator(directory),
        )


class KerasReference:
    """The saved Keras network behind the same preprocessing and calibration: the reference path."""

    def __init__(self, directory: Path) -> None:
        keras = import_keras()
        self.preprocessor = Preprocessor.load(directory / PREPROCESSING_FILE)
        self.contract = FeatureContract.load(directory / CONTRACT_FILE)
        self.network = keras.models.load_model(directory / KERAS_FILE, compile=False)
        self.calibrator = load_calibrator(directory)

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of default, computed by the Keras network."""
        require_columns(self.contract, frame)
        x = self.preprocessor.transform(frame)
        # The model is called directly rather than through predict(): same numbers, no per-call
        # overhead.
        return self.calibrator.apply(keras_logits(self.network, x))


def load_calibrator(directory: Path) -> Calibrator:
    """The saved calibrator; a model saved before calibration existed scores uncalibrated."""
    path = directory / CALIBRATION_FILE
    return Calibrator.load(path) if path.is_file() else Calibrator()


def require_columns(contract: FeatureContract, frame: pd.DataFrame) -> None:
    """Refuse a frame lacking a required input; absent nullable inputs count as missing values."""
    missing = [f.name for f in contract.features if not f.nullable and f.name not in frame.columns]
    if missing:
        raise ValueError(f"missing required input columns: {missing}")
