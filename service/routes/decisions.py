"""Reading the audit trail: off the event loop, within the audit deadline; 503
``audit_unavailable`` when the store cannot answer."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from service.audit import AuditUnavailable
from service.dependencies import AuditDep
from service.errors import ApiError
from service.schemas import DecisionRecord, ErrorResponse
from service.security import require_scope

router = APIRouter(
    prefix="/v1", tags=["audit"], dependencies=[Depends(require_scope("decisions:read"))]
)


@router.get(
    "/decisions/{request_id}",
    response_model=DecisionRecord,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
        403: {"model": ErrorResponse, "description": "The API key lacks `decisions:read`"},
        404: {"model": ErrorResponse, "description": "No decision with this id"},
        503: {"model": ErrorResponse, "description": "The audit store cannot answer in time"},
    },
    summary="The audit record of one decision",
)
async def decision(
    audit: AuditDep, request_id: str = Path(min_length=1, max_length=64)
) -> DecisionRecord:
    try:
        row = await audit.read(lambda: audit.get(request_id))
    except AuditUnavailable as exc:
        raise ApiError(
            503, "audit_unavailable", "the audit store cannot answer now", {"reason": str(exc)}
        ) from None
    if row is None:
        raise ApiError(404, "not_found", f"no decision with request id {request_id!r}")
    # Every column of the audit record is a field of the same name, but for the model's three.
    model = {"name": row.pop("model_name"), "version": row.pop("model_version")}
    model["run_id"] = row.pop("run_id")
    return DecisionRecord.model_validate(
        {**row, "created_at": row["created_at"].isoformat(), "model": model}
    )
