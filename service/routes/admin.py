"""Operator actions."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from service.dependencies import BacktestsDep, StoreDep
from service.schemas import ErrorResponse, ReloadResponse
from service.security import require_scope

router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_scope("admin"))]
)


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
        403: {"model": ErrorResponse, "description": "The API key lacks the `admin` scope"},
    },
    summary="Check the registry now and swap to a new champion if it passes the checks; "
    "read the latest back-test again",
)
async def reload(store: StoreDep, backtests: BacktestsDep) -> ReloadResponse:
    outcome = await asyncio.to_thread(store.refresh)
    await asyncio.to_thread(backtests.refresh)
    current = store.current
    return ReloadResponse(
        outcome=outcome.value,
        model=None if current is None else current.ref,
        message=store.last_error,
    )
