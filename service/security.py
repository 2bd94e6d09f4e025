"""API keys in the ``X-API-Key`` header, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from service.errors import ApiError

API_KEY_HEADER = "X-API-Key"


async def require_api_key(request: Request) -> None:
    """Refuse with 401 unless the header holds a configured key (no keys: the service is open)."""
    check_api_key(request)


def check_api_key(request: Request) -> None:
    """:func:`require_api_key` called in line, for routes that resolve no dependencies."""
    keys: list[bytes] = request.app.state.api_keys
    if not keys:
        return
    presented = request.headers.get(API_KEY_HEADER, "").encode()
    # Compare against every key, so the time taken does not reveal which one nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    if not matched:
        raise ApiError(
            401,
            "unauthorized",
            f"missing or invalid API key in the {API_KEY_HEADER} header",
        )
