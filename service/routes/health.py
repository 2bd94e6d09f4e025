"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.dependencies import AuditDep, StoreDep
from service.errors import error_response
from service.schemas import ErrorResponse, HealthResponse, ReadyResponse

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthResponse, summary="The process is alive")
def health() -> HealthResponse:
    return HealthResponse()


@router.get(
    "/ready",
    response_model=ReadyResponse,
    responses={
        503: {"model": ErrorResponse, "description": "No model loaded, or the audit store fails"}
    },
    summary="A model is loaded and the audit store takes decisions: the service can score",
)
async def ready(store: StoreDep, audit: AuditDep) -> ReadyResponse | JSONResponse:
    current = store.current
    if current is None:
        return error_response(503, "not_ready", "no model loaded", {"reason": store.last_error})
    # The last audit commit (or probe) failed and none succeeded since: every decision would
    # answer 503 audit_unavailable. Back to 200 with the next success (traffic or the probe).
    audit_failure = audit.unavailable_reason()
    if audit_failure is not None:
        return error_response(
            503, "not_ready", "the audit store is failing", {"reason": audit_failure}
        )
    return ReadyResponse(ready=True, model=current.ref)
