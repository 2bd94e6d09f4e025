"""The FastAPI application: ``create_app()`` builds it; the lifespan loads the champion."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from threadpoolctl import threadpool_limits

from service.audit import AuditTrail
from service.backtests import BacktestGauges
from service.batching import AssessmentBatcher
from service.config import Settings
from service.decisioning import Policy
from service.docs import install_docs
from service.errors import install_error_handlers
from service.logs import configure_logging
from service.memory import keep_freed_memory
from service.metrics import ServiceMetrics
from service.middleware import RequestContextMiddleware
from service.model_store import LoadedModel, ModelStore, ReloadOutcome
from service.routes import admin, decisions, health, model, monitoring, outcomes, score
from service.scoring import Scorer
from service.security import KeyRing
from service.shadow import ShadowScorer

logger = logging.getLogger("loanrisk.service")

DESCRIPTION = """
Scores loan applications with the registered loan-default DNN.

`POST /v1/score` takes one applicant's raw fields, exactly as the model's feature contract lists
them (`GET /v1/model`), and answers the probability of default, a scorecard score, a risk band, a
decision and the principal reasons raising the risk, with the model version that produced it.
Every decision is written to the audit trail before the answer is sent.

Send the API key in the `X-API-Key` header. Every error answers
`{"error": {"code", "message", "details"}}`.
"""


def _configure_tracking(settings: Settings) -> None:
    import mlflow

    from models.mlflow_flavor import tracking_uri

    # The MLflow client's own defaults (120 s timeout, 7 retries with exponential back-off) hold a
    # registry check against an unreachable server for minutes, stalling the poller and
    # POST /v1/admin/reload. The poller retries every interval anyway, so fail within seconds.
    # MLflow reads these on every request; an operator's own values win.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(settings.registry_timeout_s))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    # The registry follows the tracking URI (see models.mlflow_flavor.use_tracking).
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri or tracking_uri())


def _then(first: Callable[[], object], second: Callable[[], object]) -> Callable[[], None]:
    def both() -> None:
        first()
        second()

    return both


async def _poll(refresh: Callable[[], object], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(refresh)
        except Exception:  # a reload must never stop the loop
            logger.exception("registry check crashed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if not settings.api_key_list:
        logger.warning(
            "AUTHENTICATION DISABLED: LOANRISK_API_KEYS is empty, so anyone who can reach this "
            "service can score applicants and read decisions. Set LOANRISK_API_KEYS in production."
        )
    # Scoring matrices are small: BLAS threads only contend with the event loop for the cores.
    threadpool_limits(settings.blas_threads)
    keep_freed_memory(settings.keep_freed_memory_mb)
    _configure_tracking(settings)
    audit: AuditTrail = app.state.audit
    await audit.start()
    store: ModelStore = app.state.model_store
    if store.refresh().failed and store.current is None:
        logger.warning(
            "starting without a model: %s@%s not available (%s); /ready answers 503",
            store.name,
            store.alias,
            store.last_error,
        )
    # After the champion, whose contract it must keep. Its absence never stops the service.
    shadow_store: ModelStore | None = app.state.shadow_store
    if shadow_store is not None and shadow_store.refresh().failed and shadow_store.current is None:
        logger.warning(
            "no challenger in the shadow: %s@%s not available (%s); applicants are counted in "
            "loanrisk_shadow_failures_total",
            shadow_store.name,
            shadow_store.alias,
            shadow_store.last_error,
        )
    # Everything loaded so far lives as long as the process: keep it out of the garbage
    # collector's full passes, which otherwise stall requests for tens of milliseconds.
    gc.collect()
    gc.freeze()
    # The latest back-test of what is served, for /metrics (service.backtests).
    backtests: BacktestGauges = app.state.backtests
    backtests.refresh()
    pollers = []
    if settings.reload_interval_s > 0:
        # The back-test is read again right after each registry check, in the same task, so a
        # newly promoted version is never shown under the figures of the one it replaced.
        pollers = [
            asyncio.create_task(
                _poll(_then(polled.refresh, backtests.refresh), settings.reload_interval_s)
            )
            for polled in (store, shadow_store)
            if polled is not None
        ]
    try:
        yield
    finally:
        for poller in pollers:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        await audit.stop()
        app.state.batcher.close()


def _openapi_with_contract(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with the bodies the served model's validator accepts filled in."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    schema["components"]["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    }
    current: LoadedModel | None = app.state.model_store.current
    if current is None:
        components["Applicant"] = {
            "type": "object",
            "title": "Applicant",
            "description": "The served model's raw input fields; no model is loaded yet.",
        }
        components["BatchRequest"] = {
            "type": "object",
            "title": "BatchRequest",
            "properties": {
                "applicants": {"type": "array", "items": {"$ref": "#/components/schemas/Applicant"}}
            },
        }
        return schema
    components.update(current.records.json_schemas())
    components["Applicant"]["description"] = (
        f"One applicant's raw fields, as model {current.name} version {current.version} expects "
        "them. Unknown fields are refused; fields marked nullable may be null or omitted."
    )
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; nothing is loaded or connected until the app starts."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Loan-default risk scoring",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN: install_docs serves them locally
        redoc_url=None,
    )
    metrics = ServiceMetrics(settings.psi_window)

    def on_loaded(loaded: LoadedModel) -> None:
        metrics.model_loaded(loaded.name, loaded.version, loaded.alias)
        app.openapi_schema = None  # the applicant schema follows the served model

    def on_outcome(outcome: ReloadOutcome) -> None:
        metrics.reloads.labels(outcome.value).inc()

    app.state.settings = settings
    app.state.metrics = metrics
    app.state.policy = Policy.from_settings(settings)
    app.state.batcher = AssessmentBatcher(
        settings.max_reasons,
        settings.reason_steps,
        on_round=metrics.assessment_batch.observe,
        threads=settings.explain_threads,
    )
    app.state.api_keys = KeyRing(settings.api_key_list)
    app.state.audit = AuditTrail(
        settings.audit_db_url, settings.audit_timeout_ms / 1000, settings.audit_probe_interval_s
    )
    app.state.model_store = ModelStore(
        settings.model_name,
        settings.model_alias,
        settings.batch_max,
        on_outcome=on_outcome,
        on_loaded=on_loaded,
    )
    shadow = None
    app.state.shadow_store = None
    if settings.shadow_alias:
        # Its own store: the same checks and hot reload, and the champion's contract to keep.
        app.state.shadow_store = ModelStore(
            settings.model_name,
            settings.shadow_alias,
            settings.batch_max,
            on_outcome=lambda outcome: metrics.shadow_reloads.labels(outcome.value).inc(),
            on_loaded=lambda loaded: metrics.shadow_loaded(
                loaded.name, loaded.version, loaded.alias
            ),
            contract_of=app.state.model_store,
        )
        shadow = ShadowScorer(
            app.state.shadow_store,
            app.state.policy,
            metrics,
            settings.shadow_budget_ms / 1000,
            settings.shadow_pause_s,
        )
    app.state.backtests = BacktestGauges(
        [s for s in (app.state.model_store, app.state.shadow_store) if s is not None]
    )
    metrics.registry.register(app.state.backtests)
    app.state.scorer = Scorer(
        app.state.model_store,
        app.state.policy,
        app.state.batcher,
        app.state.audit,
        metrics,
        shadow,
    )
    install_error_handlers(app)
    for router in (score, health, monitoring, model, decisions, admin, outcomes):
        app.include_router(router.router)
    install_docs(app)
    # Added first, so inside the request context: see service.routes.score.
    app.add_middleware(score.ScoringEndpoints)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, log_requests=settings.request_log)
    app.openapi = lambda: _openapi_with_contract(app)  # type: ignore[method-assign]
    return app
