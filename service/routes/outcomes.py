"""Receiving what became of decided loans: ``POST /v1/outcomes``.

Protected by the service's API keys (``X-API-Key``) for now; an ``outcomes:write`` scope belongs
here once keys carry scopes, so that the loan system's key can report outcomes and do nothing else.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.exc import SQLAlchemyError

from service.dependencies import AuditDep
from service.errors import ApiError
from service.outcomes import OutcomesRequest, OutcomesResult, record_outcomes
from service.schemas import ErrorResponse
from service.security import require_scope

router = APIRouter(
    prefix="/v1", tags=["audit"], dependencies=[Depends(require_scope("outcomes:write"))]
)


@router.post(
    "/outcomes",
    response_model=OutcomesResult,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
        403: {"model": ErrorResponse, "description": "The API key lacks `outcomes:write`"},
        422: {"model": ErrorResponse, "description": "A row is invalid; the field is named"},
        503: {"model": ErrorResponse, "description": "The audit database could not be written"},
    },
    summary="Record observed outcomes (defaulted or not) of decided loans",
)
def record(body: OutcomesRequest, audit: AuditDep) -> OutcomesResult:
    """Store each outcome against its decision id; idempotent, corrections kept as history.

    Answers per row: how many were recorded, unchanged or corrected, and which ids have no
    decision (``unknown``: nothing stored for them, the others are). A plain ``def``: FastAPI runs
    it in a worker thread, so the database round trips do not hold up the event loop.
    """
    try:
        return record_outcomes(audit.engine, body.outcomes, source="api")
    except SQLAlchemyError as exc:
        raise ApiError(
            503, "audit_unavailable", f"outcomes could not be stored: {type(exc).__name__}"
        ) from None
