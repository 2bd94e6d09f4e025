"""What the training population looked like: the baseline for explanations and the bins for drift.

Saved with the model as ``reference.json`` so that the service can explain a decision relative to a
typical applicant and measure population stability (PSI) against training, without the data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter

from .contract import FeatureContract
from .preprocessing import Preprocessor, as_category

PSI_BINS = 10
# Empty bins would make PSI infinite; this floor is the usual convention.
PSI_FLOOR = 1e-4
OTHER = "__other__"


@dataclass(frozen=True)
class NumericProfile:
    name: str
    median: float
    edges: list[float]  # inner quantile edges; len(edges) + 1 bins, plus one for missing
    proportions: list[float]


@dataclass(frozen=True)
class CategoricalProfile:
    name: str
    mode: str | None
    categories: list[str]  # then OTHER (unseen or missing)
    proportions: list[float]


@dataclass(frozen=True)
class TrainingReference:
    """Baseline encoded applicant and per-feature and score distributions of the training split."""

    baseline: list[float]
    numeric: list[NumericProfile]
    categorical: list[CategoricalProfile]
    score_edges: list[float]
    score_proportions: list[float]

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        contract: FeatureContract,
        preprocessor: Preprocessor,
        probabilities: np.ndarray,
    ) -> TrainingReference:
        """Profile the training rows (raw ``frame``) and the model's training probabilities."""
        encoded = preprocessor.transform(frame)
        numeric = []
        for spec in contract.numeric:
            values = pd.to_numeric(frame[spec.name], errors="coerce").to_numpy(dtype=np.float64)
            observed = values[~np.isnan(values)]
            edges = _quantile_edges(observed)
            numeric.append(
                NumericProfile(
                    spec.name,
                    float(np.median(observed)) if observed.size else 0.0,
                    edges,
                    _numeric_proportions(values, edges).tolist(),
                )
            )
        categorical = []
        for spec in contract.categorical:
            counts = frame[spec.name].map(as_category).value_counts(dropna=True)
            categories = [str(c) for c in counts.index[:50]]
            proportions = _categorical_proportions(frame[spec.name].tolist(), categories)
            categorical.append(
                CategoricalProfile(
                    spec.name,
                    categories[0] if categories else None,
                    categories,
                    proportions.tolist(),
                )
            )
        score_edges = _quantile_edges(np.asarray(probabilities, dtype=np.float64))
        return cls(
            baseline=encoded.mean(axis=0).astype(float).tolist(),
            numeric=numeric,
            categorical=categorical,
            score_edges=score_edges,
            score_proportions=_numeric_proportions(probabilities, score_edges)[:-1].tolist(),
        )

    def typical_values(self) -> dict[str, Any]:
        """The median or most frequent value of each input, for plain-language messages."""
        values: dict[str, Any] = {p.name: p.median for p in self.numeric}
        values |= {p.name: p.mode for p in self.categorical}
        return values

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainingReference:
        """Read ``reference.json``; raise pydantic's ValidationError (a ValueError naming the bad
        field's path, e.g. ``numeric.0.edges``) if it is not what :meth:`save` writes."""
        return _reference_adapter().validate_json(path.read_bytes())

    def feature_psi(self, records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """PSI of each input over ``records`` (a recent window of requests) against training."""
        out: dict[str, float] = {}
        for p in self.numeric:
            values = np.array(
                [np.nan if r.get(p.name) is None else r[p.name] for r in records], dtype=np.float64
            )
            out[p.name] = psi(p.proportions, _numeric_proportions(values, p.edges))
        for c in self.categorical:
            actual = _categorical_proportions([r.get(c.name) for r in records], c.categories)
            out[c.name] = psi(c.proportions, actual)
        return out

    def score_psi(self, probabilities: Sequence[float]) -> float:
        """PSI of recent predicted probabilities against the training split's."""
        values = np.asarray(probabilities, dtype=np.float64)
        actual = _numeric_proportions(values, self.score_edges)[:-1]
        return psi(self.score_proportions, actual)


@cache
def _reference_adapter() -> TypeAdapter[TrainingReference]:
    # Built on first use, not at import; validates the frozen dataclasses above in place.
    return TypeAdapter(TrainingReference)


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index: sum((a - e) * ln(a / e)) over bins, floored to stay finite."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _quantile_edges(values: np.ndarray) -> list[float]:
    if values.size == 0:
        return []
    quantiles = np.quantile(values, np.linspace(0, 1, PSI_BINS + 1)[1:-1])
    return [float(q) for q in np.unique(quantiles)]


def _numeric_proportions(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Share of values in each quantile bin, and (last) the share missing."""
    values = np.asarray(values, dtype=np.float64)
    counts = np.zeros(len(edges) + 2)
    if values.size == 0:
        return counts
    missing = np.isnan(values)
    bins = np.searchsorted(np.asarray(edges), values[~missing], side="right")
    counts[: len(edges) + 1] = np.bincount(bins, minlength=len(edges) + 1)
    counts[-1] = missing.sum()
    return counts / values.size


def _categorical_proportions(values: Sequence[Any], categories: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 1)
    for value in values:
        counts[index.get(as_category(value), len(categories))] += 1  # type: ignore[arg-type]
    return counts / max(len(values), 1)
