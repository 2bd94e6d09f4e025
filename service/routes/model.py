"""The model being served."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.dependencies import ModelDep
from service.schemas import ErrorResponse, ModelDetails
from service.security import ANY_SCOPE, require_scope

router = APIRouter(prefix="/v1", tags=["model"], dependencies=[Depends(require_scope(ANY_SCOPE))])


@router.get(
    "/model",
    response_model=ModelDetails,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
        503: {"model": ErrorResponse, "description": "No model loaded"},
    },
    summary="Name, version, alias, training metrics and input contract of the served model",
)
def model_details(model: ModelDep) -> ModelDetails:
    return ModelDetails(
        name=model.name,
        version=model.version,
        run_id=model.run_id,
        alias=model.alias,
        loaded_at=model.loaded_at.isoformat(),
        metrics=model.metrics,
        contract=model.risk_model.contract.to_dict(),
    )
