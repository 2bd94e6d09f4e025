"""One error shape for every 4xx and 5xx: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.schemas import ErrorResponse


class ApiError(Exception):
    """An error the service answers deliberately, with a status and a machine-readable code."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_body(code, message, details))


def validation_error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The 422 body: every invalid field, and the first one named in the message."""
    details = validation_details(errors)
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more)"
    return error_body("validation_error", message, details)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "Income")`` → ``Income``; ``("body", "items", 3, "Debt")`` → ``items[3].Debt``."""
    parts = [p for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"field": field_path(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
        for e in errors
    ]


def error_response_for(exc: Exception) -> JSONResponse:
    """The answer to an exception raised while handling a request: its status and our shape.

    :class:`ApiError` as raised, invalid bodies a 422 naming every field, the framework's HTTP
    errors (404, 405, 413) with a code of their own, anything else a 500 that says nothing more.
    """
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, RequestValidationError):
        return JSONResponse(status_code=422, content=validation_error_body(list(exc.errors())))
    if isinstance(exc, StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))
    return error_response(500, "internal_error", "internal error; see the service log")


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through :func:`error_response_for`, so clients parse one shape."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return error_response_for(exc)

    for kind in (ApiError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handle)


__all__ = ["ApiError", "ErrorResponse", "install_error_handlers"]
