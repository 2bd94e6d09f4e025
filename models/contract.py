"""The feature contract: the raw applicant fields the model takes, their kinds, bounds, nullability.

The contract is inferred from training data (optionally guided by a schema file), saved as JSON
inside the registered model, and used by the service to validate requests. Protected columns are
recorded so that they can be reported on, but they are never model inputs.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    TypeAdapter,
    ValidationError,
)

FeatureKind = Literal["numeric", "categorical"]
# How a categorical field's values are written: text, or JSON true / false (a boolean column in
# the training data). Encoded the same way either way, as the categories "False" and "True".
Representation = Literal["text", "boolean"]


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
    representation: Representation = "text"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # Written only when it is not text, so contracts of text-only data read as before.
        if self.representation == "text":
            del data["representation"]
        return data


@dataclass(frozen=True)
class FeatureContract:
    """What the model takes in and what it predicts."""

    target: str
    positive_label: str
    features: tuple[FeatureSpec, ...]
    protected: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    version: int = 1

    # Read by pydantic when a saved contract is validated: a numeric positive label (``1``) is
    # read as the text it stands for, as the model compares labels as text.
    __pydantic_config__ = ConfigDict(coerce_numbers_to_str=True)

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
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureContract:
        """The contract that :meth:`to_dict` wrote; raise pydantic's ValidationError (a
        ValueError naming each bad field's path, e.g. ``features.3.kind``) on anything else."""
        return _contract_adapter().validate_python(data)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> FeatureContract:
        """Read ``contract.json``; raise ValidationError as :meth:`from_dict` does."""
        return _contract_adapter().validate_json(path.read_bytes())


@cache
def _contract_adapter() -> TypeAdapter[FeatureContract]:
    # Built on first use, not at import. Validates the frozen dataclasses above in place (the
    # types the service uses stay plain dataclasses); unknown keys are ignored, as before.
    return TypeAdapter(FeatureContract)


class FeatureDeclaration(BaseModel):
    """One column's entry under ``features`` in a schema file."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    kind: FeatureKind
    minimum: FiniteFloat | None = None
    exclusive_minimum: FiniteFloat | None = None
    maximum: FiniteFloat | None = None
    # None: nullable when the column has missing values.
    nullable: bool | None = None
    description: str = ""


class Schema(BaseModel):
    """A schema file: explicit types and bounds, columns to drop, protected columns.

    Unknown keys are refused (at the top and in each feature), so a misspelt key is an error rather
    than a silent no-op; :meth:`load` words every problem on one line, with its path in the file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    target: str | None = None
    positive_label: str | None = None
    protected: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)
    features: dict[str, FeatureDeclaration] = Field(default_factory=dict)
    # Where a generated file came from (training/synth.py): read, kept, and used for nothing else.
    synthetic: bool = False
    generator: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: Path) -> Schema:
        """Read a schema file; raise ContractError with a one-line reason if it is unusable."""
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ContractError(f"schema file {path} does not exist") from None
        except json.JSONDecodeError as exc:
            raise ContractError(f"schema file {path} is not valid JSON: {exc.msg}") from None
        if not isinstance(raw, dict):
            raise ContractError(f"schema file {path} must hold a JSON object")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ContractError(f"schema file {path}: {_problems(exc)}") from None


def _problems(error: ValidationError) -> str:
    """Pydantic's errors as one line: ``path: problem; path: problem``, unknown keys gathered
    per object."""
    unknown: dict[str, list[str]] = {}
    others: list[str] = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"])
        if problem["type"] == "extra_forbidden":
            parent, _, key = location.rpartition(".")
            unknown.setdefault(parent, []).append(key)
        elif problem["type"] == "missing":
            others.append(f"{location}: {problem['msg']}")
        else:
            others.append(f"{location}: {problem['msg']} (got {problem['input']!r})")
    gathered = [
        f"{parent + ': ' if parent else ''}unknown keys: {sorted(keys)}"
        for parent, keys in unknown.items()
    ]
    return "; ".join(gathered + others)


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
    *,
    left_out: Sequence[str] = (),
    booleans: Collection[str] = (),
) -> FeatureContract:
    """Infer the contract from training rows, letting a schema override kinds and bounds.

    Inference rules, for columns the schema does not describe: numeric dtypes are numeric, anything
    else is categorical; a numeric column never negative in the data gets ``minimum: 0`` (money
    amounts, counts, terms); a column with missing values is nullable. ``left_out`` names columns
    the data checks dropped (empty, constant, identifiers): recorded under ``dropped`` after the
    schema's own. ``booleans`` names categorical columns whose values are booleans.
    """
    schema = schema or Schema()
    excluded = {target, *schema.protected, *schema.drop, *left_out}
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
        declared = schema.features.get(name)
        kind: FeatureKind = _infer_kind(column) if declared is None else declared.kind
        if declared is None or declared.nullable is None:
            nullable = bool(column.isna().any())
        else:
            nullable = declared.nullable
        minimum = None if declared is None else declared.minimum
        if kind == "numeric":
            if not pd.api.types.is_numeric_dtype(column):
                converted = pd.to_numeric(column, errors="coerce")
                if (converted.isna() & column.notna()).any():
                    raise ContractError(f"column {name!r} is declared numeric but holds text")
                column = converted
            if declared is None and column.notna().any() and float(column.min()) >= 0:
                minimum = 0.0
        specs.append(
            FeatureSpec(
                name=str(name),
                kind=kind,
                nullable=nullable,
                minimum=None if kind == "categorical" or minimum is None else float(minimum),
                exclusive_minimum=None if declared is None else declared.exclusive_minimum,
                maximum=None if declared is None else declared.maximum,
                description="" if declared is None else declared.description,
                representation="boolean" if name in booleans else "text",
            )
        )
    if not specs:
        raise ContractError("no feature columns left after removing target, protected and dropped")
    return FeatureContract(
        target=target,
        positive_label=str(positive_label),
        features=tuple(specs),
        protected=tuple(schema.protected),
        dropped=(*schema.drop, *(name for name in left_out if name not in schema.drop)),
    )
