"""The FastAPI application: ``create_app()`` builds it; the lifespan loads the champion."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.config import Settings
from service.errors import install_error_handlers
from service.model_store import ModelStore
from service.routes import health, model, score

logger = logging.getLogger("loanrisk.service")

DESCRIPTION = """
Scores loan applications with the registered loan-default DNN.

`POST /v1/score` takes one applicant's raw fields, exactly as the model's feature contract lists
them (`GET /v1/model`), and answers the probability of default with the model version that
produced it.
Every error answers `{"error": {"code", "message", "details"}}`.
"""


def _configure_tracking(settings: Settings) -> None:
    import mlflow

    from models.mlflow_flavor import tracking_uri

    uri = settings.mlflow_tracking_uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    _configure_tracking(settings)
    store: ModelStore = app.state.model_store
    if store.load() is None:
        logger.warning(
            "starting without a model: %s@%s not available (%s); /ready answers 503",
            store.name,
            store.alias,
            store.last_error,
        )
    yield


def _openapi_with_applicant(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with the served model's applicant body filled in."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    current = app.state.model_store.current
    if current is None:
        components["Applicant"] = {
            "type": "object",
            "title": "Applicant",
            "description": "The served model's raw input fields; no model is loaded yet.",
        }
        return schema
    applicant = current.applicant.model_json_schema(by_alias=True)
    applicant["description"] = (
        f"One applicant's raw fields, as model {current.name} version {current.version} expects "
        "them. Unknown fields are refused; fields marked nullable may be null or omitted."
    )
    components["Applicant"] = applicant
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; nothing is loaded until the app starts."""
    settings = settings or Settings()
    logging.basicConfig(level=settings.log_level)
    app = FastAPI(
        title="Loan-default risk scoring",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model_store = ModelStore(settings.model_name, settings.model_alias)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(score.router)
    app.include_router(model.router)
    app.openapi = lambda: _openapi_with_applicant(app)  # type: ignore[method-assign]
    return app
