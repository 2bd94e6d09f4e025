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
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Response
from pydantic_core import to_json

from service.audit import (
    AuditTrail,
    AuditUnavailable,
    DecisionColumns,
    JSONText,
    JSONTextColumn,
)
from service.batching import AssessmentBatcher
from service.decisioning import Policy
from service.errors import ApiError
from service.ids import new_ids
from service.metrics import ServiceMetrics
from service.model_store import LoadedModel

# A large batch's audit rows go to the writer process in parts of this many applicants, the
# last part of this few.
PART_ROWS = 250
LAST_PART_ROWS = 100


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
    write_reasons = None
    if batch:
        assessment = batcher.assess_many(model.risk_model, records)
        probabilities = assessment.probabilities.tolist()
        write_reasons = assessment.reason_codes_json
        reasons: list[str] = []  # written part by part into the audit rows
    else:
        probability, reason_codes = await batcher.assess(model.risk_model, records[0])
        probabilities, reasons = [probability], [reason_codes]
    if not all(map(math.isfinite, probabilities)):
        raise RuntimeError("the model gave a probability that is not a number")
    scores, bands, decisions = policy.apply(probabilities)
    decided = _Decided(
        model=model,
        records=records,
        ids=new_ids(len(records)) if batch else [request_id],
        batch_id=request_id if batch else None,
        probabilities=probabilities,
        scores=scores,
        bands=bands,
        decisions=decisions,
        reasons=reasons,
        write_reasons=write_reasons,
    )
    try:
        committed = _send_to_audit(audit, decided)
        if batch:
            # One turn of the event loop hands the group to the writer process; the answers are
            # then written here while the writer commits.
            await asyncio.sleep(0)
        body = decided.answer()
        await committed
    except AuditUnavailable as exc:
        metrics.audit_failures.inc()
        raise ApiError(
            503,
            "audit_unavailable",
            "the decision could not be recorded; nothing was decided",
            {"reason": str(exc)},
        ) from None
    # Counted once committed. A batch is counted at the event loop's next turn, once its answer
    # is written: its 1,000 applicants take ~0.5 ms that the answer need not wait for.
    if batch:
        asyncio.get_running_loop().call_soon(
            metrics.observe_scores, records, probabilities, decisions
        )
    else:
        metrics.observe_scores(records, probabilities, decisions)
    return body


def _send_to_audit(audit: AuditTrail, decided: _Decided) -> asyncio.Future[None]:
    """Hand a request's audit rows to the writer; the future resolves once they are committed.

    Many go in parts, each as soon as it is built: the writer process inserts one while the next
    is built, leaving only the last and the commit to wait for.
    """
    if decided.batch_id is None:
        return audit.submit(decided.single_row())
    count = len(decided.records)
    if count <= PART_ROWS:
        return audit.submit(decided.batch_rows(0, count))
    return audit.submit_parts(decided.batch_rows(start, stop) for start, stop in _parts(count))


def _parts(count: int) -> list[tuple[int, int]]:
    """Bounds of a batch's parts: even parts of at most ``PART_ROWS``, then the last
    ``LAST_PART_ROWS``.

    What is left after the last part is sent is its insert and the commit; a short last part
    keeps that short while the writer process takes the long ones beside the service's work.
    Even parts, so that no part is a handful of rows costing a message and an INSERT of its own.
    """
    last = min(LAST_PART_ROWS, count)
    rest = count - last
    parts = -(-rest // PART_ROWS)  # ceiling
    bounds = [round(i * rest / parts) for i in range(parts + 1)] if parts else [0]
    return list(itertools.pairwise([*bounds, count]))


@dataclass
class _Decided:
    """One request's decisions: turned into audit rows (a slice at a time, writing the reason
    codes as it goes) and then into the answer."""

    model: LoadedModel
    records: list[dict[str, Any]]
    ids: list[str]
    batch_id: str | None  # None for a single-applicant request
    probabilities: list[float]
    scores: list[float]
    bands: list[str]
    decisions: list[str]
    reasons: list[str]  # each applicant's reason codes (JSON), in order: a batch's as written
    write_reasons: Callable[[int, int], list[str]] | None  # a batch's, a slice at a time
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def single_row(self) -> list[dict[str, Any]]:
        """The audit row of a single-applicant request."""
        model = self.model
        return [
            {
                "request_id": self.ids[0],
                "created_at": self.at,
                "batch_id": None,
                "batch_index": None,
                "model_name": model.name,
                "model_version": model.version,
                "run_id": model.run_id,
                "inputs": self.records[0],
                "probability_of_default": self.probabilities[0],
                "score": self.scores[0],
                "risk_band": self.bands[0],
                "decision": self.decisions[0],
                "reason_codes": JSONText(self.reasons[0]),
            }
        ]

    def batch_rows(self, start: int, stop: int) -> DecisionColumns:
        """The audit rows of a batch's applicants ``start`` to ``stop``, column by column."""
        assert self.write_reasons is not None  # a batch's
        part = self.write_reasons(start, stop)
        self.reasons.extend(part)
        model = self.model
        return DecisionColumns(
            count=stop - start,
            columns={
                "request_id": self.ids[start:stop],
                "batch_index": range(start, stop),
                "inputs": self.records[start:stop],
                "probability_of_default": self.probabilities[start:stop],
                "score": self.scores[start:stop],
                "risk_band": self.bands[start:stop],
                "decision": self.decisions[start:stop],
                "reason_codes": JSONTextColumn(part),
            },
            shared={
                "created_at": self.at,
                "batch_id": self.batch_id,
                "model_name": model.name,
                "model_version": model.version,
                "run_id": model.run_id,
            },
        )

    def answer(self) -> bytes:
        """The JSON body: a ``ScoreResponse``, or a ``BatchResponse`` for a batch (after every
        row has been made)."""
        model = self.model
        model_json = to_json(
            {"name": model.name, "version": model.version, "run_id": model.run_id}
        ).decode()
        answers = [
            _answer_json(*answer, model_json)
            for answer in zip(
                self.ids,
                self.probabilities,
                self.scores,
                self.bands,
                self.decisions,
                self.reasons,
                strict=True,
            )
        ]
        if self.batch_id is None:
            return answers[0].encode()
        return f'{{"results":[{",".join(answers)}]}}'.encode()


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
