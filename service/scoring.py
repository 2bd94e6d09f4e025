"""From validated applicants to audited answers: the one path both scoring routes share.

Answers are written as JSON directly: each applicant's reason codes come from the model as a JSON
array (:meth:`RiskModel.assess_serialised`) and go, as they are, into both the answer and the
audit record. They are built from values the service computed itself, so validating them again
through the response model would only spend time (a 1,000-applicant batch has 1,000 answers and up
to 4,000 reason codes). The response models in ``service.schemas`` still document them, and the
tests hold the answers to that schema.
"""

from __future__ import annotations

import asyncio
import functools
import math
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from fastapi import Response
from pydantic_core import to_json

from service.audit import AuditTrail, AuditUnavailable, JSONText
from service.batching import AssessmentBatcher
from service.decisioning import Policy
from service.errors import ApiError
from service.ids import new_ids
from service.metrics import ServiceMetrics
from service.model_store import LoadedModel

# A large batch's audit rows go to the writer process in parts of this many applicants.
PART_ROWS = 250


async def score_and_audit(
    records: list[dict[str, Any]],
    model: LoadedModel,
    policy: Policy,
    batcher: AssessmentBatcher,
    audit: AuditTrail,
    metrics: ServiceMetrics,
    request_id: str,
    batch: bool,
) -> bytes:
    """Score ``records`` in one vectorised pass, commit their audit records, return the answer:
    the JSON body of ``ScoreResponse`` for one applicant, of ``BatchResponse`` for a batch.

    A single applicant's decision takes the request's id, and is assessed together with whatever
    other single applicants are waiting (:mod:`service.batching`); in a batch each applicant gets
    its own id and the request id becomes the batch id. No answer leaves before its audit record
    is committed.
    """
    if batch:
        assessment = batcher.assess_many(model.risk_model, records)
        probabilities = assessment.probabilities.tolist()
        write_reasons = assessment.reason_codes_json
    else:
        probability, reason_codes = await batcher.assess(model.risk_model, records[0])
        probabilities = [probability]

        def write_reasons(start: int = 0, stop: int | None = None) -> list[str]:
            return [reason_codes]

    if not all(map(math.isfinite, probabilities)):
        raise RuntimeError("the model gave a probability that is not a number")
    scores, bands, decisions = policy.apply(probabilities)
    ids = new_ids(len(records)) if batch else [request_id]
    now = datetime.now(UTC)
    batch_id = request_id if batch else None
    reasons: list[str] = []

    def audit_rows(start: int, stop: int) -> list[dict[str, Any]]:
        """The audit rows of applicants ``start`` to ``stop``, writing their reason codes."""
        part = write_reasons(start, stop)
        reasons.extend(part)
        return [
            {
                "request_id": ids[index],
                "created_at": now,
                "batch_id": batch_id,
                "batch_index": index if batch else None,
                "model_name": model.name,
                "model_version": model.version,
                "run_id": model.run_id,
                "inputs": records[index],
                "probability_of_default": probabilities[index],
                "score": scores[index],
                "risk_band": bands[index],
                "decision": decisions[index],
                "reason_codes": JSONText(reason_codes),
            }
            for index, reason_codes in zip(range(start, stop), part, strict=True)
        ]

    count = len(records)
    try:
        with audit.transaction() if count > PART_ROWS else nullcontext() as transaction:
            if transaction is None:
                committed = audit.submit(audit_rows(0, count))
            else:
                # Each part goes to the writer process as soon as it is built: it inserts one
                # while the next is built, leaving only the last and the commit to wait for.
                for start in range(0, count, PART_ROWS):
                    transaction.send(audit_rows(start, min(start + PART_ROWS, count)))
                committed = transaction.commit()
        if batch:
            # One turn of the event loop hands the group to the writer process; the answers are
            # then written here while the writer commits.
            await asyncio.sleep(0)
        model_json = to_json(
            {"name": model.name, "version": model.version, "run_id": model.run_id}
        ).decode()
        answers = [
            _answer_json(*answer, model_json)
            for answer in zip(ids, probabilities, scores, bands, decisions, reasons, strict=True)
        ]
        body = (f'{{"results":[{",".join(answers)}]}}' if batch else answers[0]).encode()
        await committed
    except AuditUnavailable as exc:
        metrics.audit_failures.inc()
        raise ApiError(
            503,
            "audit_unavailable",
            "the decision could not be recorded; nothing was decided",
            {"reason": str(exc)},
        ) from None
    # Counted once committed, but after the answer is on its way: the callback runs at the event
    # loop's next turn, by when the response has been written to the socket (~1.4 ms for 1,000).
    asyncio.get_running_loop().call_soon(metrics.observe_scores, records, probabilities, decisions)
    return body


def _answer_json(
    decision_id: str,
    probability: float,
    score: float,
    band: str,
    decision: str,
    reason_codes: str,
    model_json: str,
) -> str:
    """One applicant's ``ScoreResponse`` as JSON, around reason codes serialised already.

    Finite floats' ``repr`` is valid JSON; ids are hexadecimal and decisions fixed words, so only
    the band label (from settings) needs escaping, and it is escaped once per label.
    """
    return (
        f'{{"request_id":"{decision_id}","probability_of_default":{probability!r},'
        f'"score":{score!r},"risk_band":{_json_string(band)},"decision":"{decision}",'
        f'"reason_codes":{reason_codes},"model":{model_json}}}'
    )


@functools.cache
def _json_string(text: str) -> str:
    return to_json(text).decode()


def json_response(content: Any, status: int = 200) -> Response:
    return json_body(to_json(content), status)


def json_body(body: bytes, status: int = 200) -> Response:
    """A response from JSON already serialised."""
    return Response(body, status_code=status, media_type="application/json")
