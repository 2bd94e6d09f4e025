"""Request and response bodies. The applicant body is built from the served model's contract."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from models.contract import FeatureContract, FeatureSpec

MAX_CATEGORY_LENGTH = 200


def _field_for(spec: FeatureSpec, example: Any) -> tuple[Any, Any]:
    description = spec.description or spec.name
    if spec.kind == "numeric":
        annotation: Any = Annotated[
            float,
            Field(
                strict=True,
                allow_inf_nan=False,
                ge=spec.minimum,
                gt=spec.exclusive_minimum,
                le=spec.maximum,
            ),
        ]
    else:
        annotation = Annotated[
            str, Field(strict=True, min_length=1, max_length=MAX_CATEGORY_LENGTH)
        ]
    if spec.nullable:
        description += " (may be null or omitted when unknown)"
        annotation = annotation | None
        default = Field(None, alias=spec.name, description=description, examples=[example])
    else:
        default = Field(..., alias=spec.name, description=description, examples=[example])
    return annotation, default


def applicant_schema(
    contract: FeatureContract, example: dict[str, Any] | None = None
) -> type[BaseModel]:
    """A pydantic model accepting exactly the contract's raw fields, with their bounds.

    Python attribute names are positional (``f0``, ``f1``...) and the JSON names are aliases, so any
    column name works, even one that is not an identifier or clashes with pydantic's own names.
    """
    example = example or {}
    fields = {
        f"f{index}": _field_for(spec, example.get(spec.name))
        for index, spec in enumerate(contract.features)
    }
    config = ConfigDict(
        extra="forbid",
        populate_by_name=False,
        json_schema_extra={"examples": [example]} if example else None,
    )
    return create_model("Applicant", __config__=config, **fields)  # type: ignore[call-overload]


class ModelRef(BaseModel):
    """Which registered model version produced an answer."""

    name: str = Field(examples=["loan-default"])
    version: str = Field(examples=["3"])
    run_id: str | None = Field(None, description="MLflow run that trained this version")


def batch_schema(applicant: type[BaseModel], batch_max: int) -> type[BaseModel]:
    """``{"applicants": [...]}`` holding 1 to ``batch_max`` applicants."""
    config = ConfigDict(extra="forbid")
    field = (list[applicant], Field(min_length=1, max_length=batch_max))  # type: ignore[valid-type]
    return create_model("BatchRequest", __config__=config, applicants=field)  # type: ignore[call-overload]


class ReasonCode(BaseModel):
    """One principal reason that raises this applicant's risk."""

    feature: str = Field(examples=["Debt"])
    value: float | str | None = Field(description="The applicant's value", examples=[5000])
    contribution: float = Field(
        description="Increase in the log-odds of default attributed to this field, relative to a "
        "typical training applicant",
        examples=[0.42],
    )
    message: str = Field(examples=["Debt of 5,000 is higher than typical (0)"])


class ScoreResponse(BaseModel):
    """The risk assessment of one applicant."""

    request_id: str = Field(description="Unique id of this decision; audit key")
    probability_of_default: float = Field(
        ge=0.0, le=1.0, description="Probability that the applicant defaults", examples=[0.1834]
    )
    score: float = Field(description="Scorecard points: higher is safer", examples=[587.3])
    risk_band: str = Field(examples=["C"])
    decision: Literal["approve", "review", "decline"]
    reason_codes: list[ReasonCode] = Field(
        description="Up to the configured number of reasons raising the risk, most important first"
    )
    model: ModelRef


class BatchResponse(BaseModel):
    """One answer per applicant, in input order."""

    results: list[ScoreResponse]


class DecisionRecord(BaseModel):
    """The audit record of one decision."""

    model_config = ConfigDict(protected_namespaces=())

    request_id: str
    created_at: str
    batch_id: str | None = None
    batch_index: int | None = None
    model: ModelRef
    inputs: dict[str, Any]
    probability_of_default: float
    score: float
    risk_band: str
    decision: str
    reason_codes: list[ReasonCode]


class ReloadResponse(BaseModel):
    """The result of checking the registry."""

    outcome: str = Field(examples=["loaded"])
    model: ModelRef | None
    message: str | None = None


class ModelDetails(ModelRef):
    """The model being served, with its training evidence and input contract."""

    model_config = ConfigDict(protected_namespaces=())

    alias: str
    loaded_at: str = Field(description="When this service loaded the version (UTC, ISO 8601)")
    metrics: dict[str, float] = Field(description="Test and validation metrics from training")
    contract: dict[str, Any] = Field(description="The raw input fields the model accepts")


class HealthResponse(BaseModel):
    status: str = Field("ok", examples=["ok"])


class ReadyResponse(BaseModel):
    ready: bool
    model: ModelRef | None = None


class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str = Field(examples=["Income: Input should be greater than or equal to 0"])
    details: Any = None


class ErrorResponse(BaseModel):
    """The one shape of every 4xx and 5xx answer."""

    error: ErrorBody
