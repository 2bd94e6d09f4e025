"""Receiving what became of decided loans: ``POST /v1/outcomes``.

Needs a key with the ``outcomes:write`` scope (``X-API-Key``), so that the loan system's key can
report outcomes and do nothing else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from service.dependencies import AuditDep, validate_body
from service.errors import ApiError
from service.outcomes import (
    OutcomeIn,
    OutcomesRequest,
    OutcomesResult,
    record_outcomes,
    refuse_repeated_ids,
)
from service.schemas import ErrorResponse, refuse_repeated_keys
from service.security import require_scope

router = APIRouter(
    prefix="/v1", tags=["audit"], dependencies=[Depends(require_scope("outcomes:write"))]
)


async def checked_body(body: OutcomesRequest, request: Request) -> OutcomesRequest:
    """The validated body, refused with a 422 naming the place when the raw JSON repeats a key
    (a parser keeps the last value: the first was never checked) or a row repeats an earlier
    row's ``request_id``. FastAPI validates ``body`` first; its raw bytes are cached."""
    # Every field is required. Date-times hold colons, so such a body is parsed a second time
    # to look: 35 ms for 10,000 rows (1.1 MB) on this machine, so in a worker thread.
    keys = 1 + len(OutcomeIn.model_fields) * len(body.outcomes)

    def check(raw: bytes) -> OutcomesRequest:
        refuse_repeated_keys(raw, keys)
        refuse_repeated_ids(body.outcomes)
        return body

    return await run_in_threadpool(validate_body, check, await request.body())


@router.post(
    "/outcomes",
    response_model=OutcomesResult,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
        403: {"model": ErrorResponse, "description": "The API key lacks `outcomes:write`"},
        422: {
            "model": ErrorResponse,
            "description": "A row is invalid, repeats a key or an earlier row's request_id; "
            "the field is named",
        },
        503: {"model": ErrorResponse, "description": "The audit database could not be written"},
    },
    summary="Record observed outcomes (defaulted or not) of decided loans",
)
def record(
    body: Annotated[OutcomesRequest, Depends(checked_body)], audit: AuditDep
) -> OutcomesResult:
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
