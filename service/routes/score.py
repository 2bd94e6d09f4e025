"""Scoring applicants, one or a batch: the routes that carry the traffic.

Declared as FastAPI routes (so OpenAPI documents them and any FastAPI app serves them), and
reached through :class:`ScoringEndpoints`, which calls the same two functions for these paths
before the router: FastAPI's routing costs a sixth of a single-applicant request. Callgrind
instructions per single-applicant request, in-process (an ASGI driver, 200 requests after 20 of
warm-up, the same model): 2.67 M through the lane before the Scorer; 2.70 M through the lane
now; 3.06 M through the router with a route calling its function directly (no dependencies
solved, the same error handlers), 3.25 M with that route's own ASGI call in place of FastAPI's
exit stacks (the writer process's timing moves the counts by a few percent). Errors take the
one mapping of :func:`service.errors.error_response_for`; the key is checked by
:func:`service.security.check_api_key`, inside the route functions, on both ways in.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from service.dependencies import read_request_body
from service.errors import ApiError, error_response_for
from service.schemas import BatchResponse, ErrorResponse, ScoreResponse
from service.scoring import Scorer
from service.security import check_api_key

SCORE_PATH = "/v1/score"
BATCH_PATH = "/v1/score/batch"


router = APIRouter(tags=["scoring"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
    403: {"model": ErrorResponse, "description": "The API key lacks the `score` scope"},
    413: {"model": ErrorResponse, "description": "The body is too large"},
    422: {"model": ErrorResponse, "description": "Invalid input; the message names the field"},
    503: {"model": ErrorResponse, "description": "No model loaded, or the audit write failed"},
}


def _body(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


async def _checked_body(request: Request) -> tuple[Scorer, bytes, str | None]:
    key_name = check_api_key(request, "score")
    body = await read_request_body(request, request.app.state.settings.max_body_bytes)
    return request.app.state.scorer, body, key_name


@router.post(
    SCORE_PATH,
    response_model=ScoreResponse,
    responses=ERRORS,
    openapi_extra=_body("Applicant"),
    summary="Assess one applicant: probability, score, band, decision and reasons",
)
async def score(request: Request) -> Response:
    scorer, body, key_name = await _checked_body(request)
    return json_body(await scorer.score_one(body, request.state.request_id, key_name))


@router.post(
    BATCH_PATH,
    response_model=BatchResponse,
    responses=ERRORS,
    openapi_extra=_body("BatchRequest"),
    summary="Assess up to LOANRISK_BATCH_MAX applicants in one vectorised pass",
)
async def score_batch(request: Request) -> Response:
    scorer, body, key_name = await _checked_body(request)
    return json_body(await scorer.score_batch(body, request.state.request_id, key_name))


def json_body(body: bytes) -> Response:
    """A 200 response from JSON already serialised."""
    return Response(body, media_type="application/json")


class ScoringEndpoints:
    """ASGI layer answering ``POST /v1/score`` and ``POST /v1/score/batch`` with the route
    functions above, before the router.

    Deliberate errors (:class:`ApiError`, an invalid body) are answered here by the app's one
    mapping; anything unexpected propagates to the app's server-error handler (a 500 in the same
    shape). Other requests, and other methods on these paths (405 from the router), pass through.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The routes declared above, so metrics and logs label these requests exactly as routed
        # ones. (From this module's router: an app lists an included router as one entry.)
        self.routes = {getattr(r, "path", None): r for r in router.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in _ENDPOINTS or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.routes.get(path)
        try:
            response = await _ENDPOINTS[path](Request(scope, receive))
        except (ApiError, RequestValidationError) as exc:
            response = error_response_for(exc)
        await response(scope, receive, send)


_ENDPOINTS = {SCORE_PATH: score, BATCH_PATH: score_batch}
