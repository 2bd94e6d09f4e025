"""From validated applicants to audited answers: the one path both scoring routes share."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from service.audit import AuditTrail, AuditUnavailable, audit_row
from service.config import Settings
from service.decisioning import Policy
from service.errors import ApiError
from service.metrics import ServiceMetrics
from service.model_store import LoadedModel
from service.schemas import ReasonCode, ScoreResponse


async def score_and_audit(
    records: list[dict[str, Any]],
    model: LoadedModel,
    policy: Policy,
    audit: AuditTrail,
    metrics: ServiceMetrics,
    settings: Settings,
    request_id: str,
    batch: bool,
) -> list[ScoreResponse]:
    """Score ``records`` in one vectorised pass, commit their audit records, return the answers.

    A single applicant's decision takes the request's id; in a batch each applicant gets its own id
    and the request id becomes the batch id. No answer leaves before its audit record is committed.
    """
    assessment = model.risk_model.assess(records, settings.max_reasons, settings.reason_steps)
    probabilities = assessment.probabilities.tolist()
    scores = policy.scores(assessment.probabilities).tolist()
    bands = policy.risk_bands(assessment.probabilities)
    decisions = policy.decisions(assessment.probabilities)
    reasons = assessment.reasons or [[] for _ in records]
    now = datetime.now(UTC)
    ref = model.ref
    answers: list[ScoreResponse] = []
    rows: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        decision_id = uuid.uuid4().hex if batch else request_id
        codes = [
            ReasonCode(
                feature=r.feature, value=r.value, contribution=r.contribution, message=r.message
            )
            for r in reasons[index]
        ]
        answers.append(
            ScoreResponse(
                request_id=decision_id,
                probability_of_default=probabilities[index],
                score=scores[index],
                risk_band=bands[index],
                decision=decisions[index],
                reason_codes=codes,
                model=ref,
            )
        )
        rows.append(
            audit_row(
                decision_id,
                now,
                model,
                record,
                probabilities[index],
                scores[index],
                bands[index],
                decisions[index],
                [c.model_dump() for c in codes],
                batch_id=request_id if batch else None,
                batch_index=index if batch else None,
            )
        )
    try:
        await audit.record(rows)
    except AuditUnavailable as exc:
        metrics.audit_failures.inc()
        raise ApiError(
            503,
            "audit_unavailable",
            "the decision could not be recorded; nothing was decided",
            {"reason": str(exc)},
        ) from None
    metrics.observe_scores(records, probabilities, decisions)
    return answers
