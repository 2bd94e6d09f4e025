"""Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.dependencies import MetricsDep, StoreDep

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    summary="Prometheus metrics, PSI included",
)
def metrics(metrics: MetricsDep, store: StoreDep) -> Response:
    current = store.current
    reference = None if current is None else current.risk_model.reference
    return Response(metrics.render(reference), media_type=CONTENT_TYPE_LATEST)
