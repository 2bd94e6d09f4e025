"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.dependencies import StoreDep
from service.errors import error_response
from service.schemas import ErrorResponse, HealthResponse, ReadyResponse

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthResponse, summary="The process is alive")
def health() -> HealthResponse:
    return HealthResponse()


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={503: {"model": ErrorResponse, "description": "No model loaded"}},
    summary="A model is loaded and the service can score",
)
def ready(store: StoreDep) -> ReadyResponse | JSONResponse:
    current = store.current
    if current is None:
        return error_response(503, "not_ready", "no model loaded", {"reason": store.last_error})
    return ReadyResponse(ready=True, model=current.ref)
