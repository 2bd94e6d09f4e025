"""Scoring applicants, one or a batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from service.dependencies import current_model, read_request_body, validate_body
from service.schemas import BatchResponse, ErrorResponse, ScoreResponse
from service.scoring import json_response, score_and_audit
from service.security import require_api_key

router = APIRouter(prefix="/v1", tags=["scoring"], dependencies=[Depends(require_api_key)])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
    413: {"model": ErrorResponse, "description": "The body is too large"},
    422: {"model": ErrorResponse, "description": "Invalid input; the message names the field"},
    503: {"model": ErrorResponse, "description": "No model loaded, or the audit write failed"},
}


def _body(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


# These two routes take the bare Request and resolve what they need in line: each FastAPI
# dependency costs tens of microseconds, and these are the routes that carry the traffic.


async def _assess(request: Request, batch: bool) -> list[dict[str, Any]]:
    state = request.app.state
    model = current_model(state.model_store)
    body = await read_request_body(request, state.settings.max_body_bytes)
    if batch:
        applicants = validate_body(model.batch, body).applicants  # type: ignore[attr-defined]
        records = [a.model_dump(by_alias=True) for a in applicants]
    else:
        records = [validate_body(model.applicant, body).model_dump(by_alias=True)]
    return await score_and_audit(
        records,
        model,
        state.policy,
        state.audit,
        state.metrics,
        state.settings,
        request.state.request_id,
        batch=batch,
    )


@router.post(
    "/score",
    response_model=ScoreResponse,
    responses=ERRORS,
    openapi_extra=_body("Applicant"),
    summary="Assess one applicant: probability, score, band, decision and reasons",
)
async def score(request: Request) -> Response:
    return json_response((await _assess(request, batch=False))[0])


@router.post(
    "/score/batch",
    response_model=BatchResponse,
    responses=ERRORS,
    openapi_extra=_body("BatchRequest"),
    summary="Assess up to LOANRISK_BATCH_MAX applicants in one vectorised pass",
)
async def score_batch(request: Request) -> Response:
    return json_response({"results": await _assess(request, batch=True)})
