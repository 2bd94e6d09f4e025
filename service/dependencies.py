"""Request dependencies: settings, the loaded model, the audit trail and validated bodies.

All are ``async def`` although none awaits: FastAPI runs plain ``def`` dependencies in a worker
thread, a hop that cost more than the scoring itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.audit import AuditTrail
from service.config import Settings
from service.decisioning import Policy
from service.errors import ApiError
from service.metrics import ServiceMetrics
from service.model_store import LoadedModel, ModelStore


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> ModelStore:
    return request.app.state.model_store


async def get_audit(request: Request) -> AuditTrail:
    return request.app.state.audit


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


async def get_policy(request: Request) -> Policy:
    return request.app.state.policy


async def get_request_id(request: Request) -> str:
    return request.state.request_id


async def get_model(store: Annotated[ModelStore, Depends(get_store)]) -> LoadedModel:
    """The model serving this request, taken once; 503 when none is loaded."""
    current = store.current
    if current is None:
        raise ApiError(
            503,
            "model_unavailable",
            f"no model loaded: {store.name}@{store.alias} is not available in the registry",
            {"reason": store.last_error},
        )
    return current


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
AuditDep = Annotated[AuditTrail, Depends(get_audit)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
RequestIdDep = Annotated[str, Depends(get_request_id)]


async def read_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw request body, refused with 413 beyond ``max_body_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise ApiError(413, "payload_too_large", _too_large(settings.max_body_bytes))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > settings.max_body_bytes:
            raise ApiError(413, "payload_too_large", _too_large(settings.max_body_bytes))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"request body exceeds {limit} bytes (LOANRISK_MAX_BODY_BYTES)"


BodyDep = Annotated[bytes, Depends(read_body)]


def _validate(schema: type[BaseModel], body: bytes) -> BaseModel:
    try:
        return schema.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


async def parse_applicant(body: BodyDep, model: ModelDep) -> BaseModel:
    """Validate one applicant against the served model's contract; 422 names the field."""
    return _validate(model.applicant, body)


async def parse_batch(body: BodyDep, model: ModelDep) -> BaseModel:
    """Validate a batch; 422 names the index and the field (``applicants[3].Debt``)."""
    return _validate(model.batch, body)


ApplicantDep = Annotated[BaseModel, Depends(parse_applicant)]
BatchDep = Annotated[BaseModel, Depends(parse_batch)]
