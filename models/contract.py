"""The feature contract: the raw applicant fields the model takes, their kinds, bounds, nullability.

The contract is inferred from training data (optionally guided by a schema file), saved as JSON
inside the registered model, and used by the service to validate requests. Protected columns are
recorded so that they can be reported on, but they are never model inputs.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

FeatureKind = Literal["numeric", "categorical"]

# "synthetic" and "generator" record where a generated file came from (training/synth.py); the
# reader accepts them and ignores them.
SCHEMA_KEYS = {
    "target",
    "positive_label",
    "protected",
    "drop",
    "features",
    "synthetic",
    "generator",
}
FEATURE_KEYS = {"kind", "minimum", "exclusive_minimum", "maximum", "nullable", "description"}


class ContractError(ValueError):
    """The data or the schema file cannot define a valid feature contract."""


@dataclass(frozen=True)
class FeatureSpec:
    """One raw model input."""

    name: str
    kind: FeatureKind
    nullable: bool = False
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    description: str = ""


@dataclass(frozen=True)
class FeatureContract:
    """What the model takes in and what it predicts."""

    target: str
    positive_label: str
    features: tuple[FeatureSpec, ...]
    protected: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    version: int = 1

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[FeatureSpec]:
        return [f for f in self.features if f.kind == "numeric"]

    @property
    def categorical(self) -> list[FeatureSpec]:
        return [f for f in self.features if f.kind == "categorical"]

    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "target": self.target,
            "positive_label": self.positive_label,
            "protected": list(self.protected),
            "dropped": list(self.dropped),
            "features": [asdict(f) for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureContract:
        return cls(
            target=data["target"],
            positive_label=str(data["positive_label"]),
            features=tuple(FeatureSpec(**f) for f in data["features"]),
            protected=tuple(data.get("protected", ())),
            dropped=tuple(data.get("dropped", ())),
            version=int(data.get("version", 1)),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> FeatureContract:
        return cls.from_dict(json.loads(path.read_text()))


@dataclass
class Schema:
    """A schema file: explicit types and bounds, columns to drop, protected columns."""

    target: str | None = None
    positive_label: str | None = None
    protected: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Schema:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ContractError(f"schema file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ContractError(f"schema file {path} is not valid JSON: {exc.msg}") from None
        if not isinstance(raw, dict):
            raise ContractError(f"schema file {path} must hold a JSON object")
        unknown = set(raw) - SCHEMA_KEYS
        if unknown:
            raise ContractError(f"schema file {path} has unknown keys: {sorted(unknown)}")
        features = raw.get("features", {})
        for name, spec in features.items():
            bad = set(spec) - FEATURE_KEYS
            if bad:
                raise ContractError(f"schema feature {name!r} has unknown keys: {sorted(bad)}")
            if spec.get("kind") not in ("numeric", "categorical"):
                raise ContractError(
                    f"schema feature {name!r} needs kind 'numeric' or 'categorical'"
                )
        return cls(
            target=raw.get("target"),
            positive_label=None
            if raw.get("positive_label") is None
            else str(raw["positive_label"]),
            protected=list(raw.get("protected", [])),
            drop=list(raw.get("drop", [])),
            features=dict(features),
        )


def _infer_kind(series: pd.Series) -> FeatureKind:
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    return "categorical"


def infer_contract(
    frame: pd.DataFrame,
    target: str,
    positive_label: str,
    schema: Schema | None = None,
) -> FeatureContract:
    """Infer the contract from training rows, letting a schema override kinds and bounds.

    Inference rules, for columns the schema does not describe: numeric dtypes are numeric, anything
    else is categorical; a numeric column never negative in the data gets ``minimum: 0`` (money
    amounts, counts, terms); a column with missing values is nullable.
    """
    schema = schema or Schema()
    excluded = {target, *schema.protected, *schema.drop}
    for name in [*schema.protected, *schema.drop, *schema.features]:
        if name not in frame.columns:
            raise ContractError(f"schema names column {name!r}, which is not in the data")
    overlap = set(schema.features) & (set(schema.protected) | set(schema.drop))
    if overlap:
        raise ContractError(f"columns both described as features and excluded: {sorted(overlap)}")

    specs: list[FeatureSpec] = []
    for name in frame.columns:
        if name in excluded:
            continue
        column = frame[name]
        declared = schema.features.get(name, {})
        kind: FeatureKind = declared.get("kind") or _infer_kind(column)
        nullable = bool(declared.get("nullable", column.isna().any()))
        minimum = declared.get("minimum")
        if kind == "numeric":
            if not pd.api.types.is_numeric_dtype(column):
                converted = pd.to_numeric(column, errors="coerce")
                if (converted.isna() & column.notna()).any():
                    raise ContractError(f"column {name!r} is declared numeric but holds text")
                column = converted
            if not declared and column.notna().any() and float(column.min()) >= 0:
                minimum = 0.0
        specs.append(
            FeatureSpec(
                name=str(name),
                kind=kind,
                nullable=nullable,
                minimum=None if kind == "categorical" or minimum is None else float(minimum),
                exclusive_minimum=_optional_float(declared.get("exclusive_minimum")),
                maximum=_optional_float(declared.get("maximum")),
                description=str(declared.get("description", "")),
            )
        )
    if not specs:
        raise ContractError("no feature columns left after removing target, protected and dropped")
    return FeatureContract(
        target=target,
        positive_label=str(positive_label),
        features=tuple(specs),
        protected=tuple(schema.protected),
        dropped=tuple(schema.drop),
    )


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ContractError(f"bound {value!r} is not a finite number")
    return number
