"""Scoring applicants."""

from __future__ import annotations

from fastapi import APIRouter

from service.dependencies import ApplicantDep, ModelDep
from service.schemas import ErrorResponse, ScoreResponse

router = APIRouter(prefix="/v1", tags=["scoring"])

APPLICANT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Applicant"}}},
    }
}


@router.post(
    "/score",
    response_model=ScoreResponse,
    responses={
        422: {"model": ErrorResponse, "description": "The applicant is invalid; names the field"},
        413: {"model": ErrorResponse, "description": "The body is too large"},
        503: {"model": ErrorResponse, "description": "No model loaded"},
    },
    openapi_extra=APPLICANT_BODY,
    summary="Probability of default of one applicant",
)
def score(applicant: ApplicantDep, model: ModelDep) -> ScoreResponse:
    record = applicant.model_dump(by_alias=True)
    probability = float(model.risk_model.score_records([record])[0])
    return ScoreResponse(probability_of_default=probability, model=model.ref)
