"""Request dependencies: the loaded model and the validated applicant body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.config import Settings
from service.errors import ApiError
from service.model_store import LoadedModel, ModelStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ModelStore:
    return request.app.state.model_store


def get_model(store: Annotated[ModelStore, Depends(get_store)]) -> LoadedModel:
    """The model serving this request; 503 when none is loaded."""
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


async def read_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw request body, refused with 413 beyond ``max_body_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise ApiError(413, "payload_too_large", _too_large(settings.max_body_bytes))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.max_body_bytes:
            raise ApiError(413, "payload_too_large", _too_large(settings.max_body_bytes))
    return body


def _too_large(limit: int) -> str:
    return f"request body exceeds {limit} bytes (LOANRISK_MAX_BODY_BYTES)"


BodyDep = Annotated[bytes, Depends(read_body)]


def parse_applicant(body: BodyDep, model: ModelDep) -> BaseModel:
    """Validate the body against the served model's contract; errors answer 422 naming the field."""
    try:
        return model.applicant.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


ApplicantDep = Annotated[BaseModel, Depends(parse_applicant)]
