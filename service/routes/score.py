"""Scoring applicants, one or a batch: the routes that carry the traffic.

They are FastAPI routes like the others (matched by the router, documented by OpenAPI, errors
answered by the app's exception handlers), declared with :class:`DirectRoute`: the route calls its
function with the request and sends the :class:`Response` it returns, without FastAPI's
dependency resolution and body parsing, which these routes do not use (the key check, the body's
size limit and its validation against the served model run in line). Measured with callgrind on
one single-applicant request, in-process: RESULT_PLACEHOLDER
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from service.dependencies import read_request_body
from service.schemas import BatchResponse, ErrorResponse, ScoreResponse
from service.scoring import Scorer
from service.security import check_api_key

SCORE_PATH = "/v1/score"
BATCH_PATH = "/v1/score/batch"


class DirectRoute(APIRoute):
    """An APIRoute whose function takes the :class:`Request` and returns the :class:`Response`,
    called as it is: no dependencies to solve, no body to parse, no answer to serialise, and no
    per-request exit stacks for dependencies with ``yield``. Its errors go to the app's exception
    handlers like any route's."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.app = self._call

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


router = APIRouter(tags=["scoring"], route_class=DirectRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
    413: {"model": ErrorResponse, "description": "The body is too large"},
    422: {"model": ErrorResponse, "description": "Invalid input; the message names the field"},
    503: {"model": ErrorResponse, "description": "No model loaded, or the audit write failed"},
}


def _body(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


async def _checked_body(request: Request) -> tuple[Scorer, bytes]:
    check_api_key(request)
    return request.app.state.scorer, await read_request_body(
        request, request.app.state.settings.max_body_bytes
    )


@router.post(
    SCORE_PATH,
    response_model=ScoreResponse,
    responses=ERRORS,
    openapi_extra=_body("Applicant"),
    summary="Assess one applicant: probability, score, band, decision and reasons",
)
async def score(request: Request) -> Response:
    scorer, body = await _checked_body(request)
    return json_body(await scorer.score_one(body, request.state.request_id))


@router.post(
    BATCH_PATH,
    response_model=BatchResponse,
    responses=ERRORS,
    openapi_extra=_body("BatchRequest"),
    summary="Assess up to LOANRISK_BATCH_MAX applicants in one vectorised pass",
)
async def score_batch(request: Request) -> Response:
    scorer, body = await _checked_body(request)
    return json_body(await scorer.score_batch(body, request.state.request_id))


def json_body(body: bytes) -> Response:
    """A 200 response from JSON already serialised."""
    return Response(body, media_type="application/json")
