"""Request dependencies: the model store, the loaded model, the audit trail, the metrics, and
reading and validating bodies.

All are ``async def`` although none awaits: FastAPI runs plain ``def`` dependencies in a worker
thread, a hop that cost more than the scoring itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from service.audit import AuditTrail
from service.backtests import BacktestGauges
from service.errors import ApiError
from service.metrics import ServiceMetrics
from service.model_store import LoadedModel, ModelStore

_Valid = TypeVar("_Valid")


async def get_store(request: Request) -> ModelStore:
    return request.app.state.model_store


async def get_backtests(request: Request) -> BacktestGauges:
    return request.app.state.backtests


async def get_audit(request: Request) -> AuditTrail:
    return request.app.state.audit


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


def current_model(store: ModelStore) -> LoadedModel:
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


async def get_model(store: Annotated[ModelStore, Depends(get_store)]) -> LoadedModel:
    return current_model(store)


StoreDep = Annotated[ModelStore, Depends(get_store)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
AuditDep = Annotated[AuditTrail, Depends(get_audit)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
BacktestsDep = Annotated[BacktestGauges, Depends(get_backtests)]


async def read_request_body(request: Request, limit: int) -> bytes:
    """The raw request body, refused with 413 beyond ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise ApiError(413, "payload_too_large", _too_large(limit))
        return await request.body()  # the server enforces the declared length
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", _too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"request body exceeds {limit} bytes (LOANRISK_MAX_BODY_BYTES)"


def validate_body(validate: Callable[[bytes], _Valid], body: bytes) -> _Valid:
    """``validate(body)``, its pydantic errors turned into a 422 naming the field."""
    try:
        return validate(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
