"""From a request body to an audited answer: the :class:`Scorer`, built once by ``create_app``.

A request's decisions are made once, column by column (:class:`~service.audit.DecisionColumns`),
and both the audit record and the answer are written from those same columns: the answer's fields
are the audit's columns of the same names, listed once in :data:`ANSWER_FIELDS`. A field added to
the answer is added there, to the columns :func:`_decide` makes, to the response models
(``service.schemas``) and to the audit table.

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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json

from service.audit import AuditTrail, AuditUnavailable, DecisionColumns, JSONText, JSONTextColumn
from service.batching import AssessmentBatcher
from service.decisioning import Policy
from service.dependencies import current_model, validate_body
from service.errors import ApiError
from service.ids import new_ids
from service.metrics import ServiceMetrics
from service.model_store import LoadedModel, ModelStore
from service.shadow import ShadowScorer

# A large batch's audit rows go to the writer process in parts of this many applicants, the
# last part of this few.
PART_ROWS = 250
LAST_PART_ROWS = 100


@functools.cache
def _json_string(text: str) -> str:
    """A label as a JSON string, escaped once per label."""
    return to_json(text).decode()


# The answer's fields, in order, each with how one value is written as JSON; the model that
# decided follows them. Each is an audit column of the same name, per applicant or shared by the
# request (written once per request). Finite floats' ``repr`` is valid JSON; ids are hexadecimal;
# reason codes and the policy are JSON text.
ANSWER_FIELDS: dict[str, Callable[[Any], str]] = {
    "request_id": '"{}"'.format,
    "probability_of_default": repr,
    "score": repr,
    "risk_band": _json_string,
    "decision": _json_string,
    "reason_codes": str,
    "policy": str,
}


class Scorer:
    """Validates, scores, decides and audits requests: the one path of both scoring routes.

    ``score_one`` and ``score_batch`` take a request body and return the JSON body of the answer
    (``ScoreResponse``, ``BatchResponse``). Each takes the served model once, so a reload never
    mixes two versions in one answer. No answer leaves before its audit record is committed: a
    failed audit write raises :class:`ApiError` 503, and nothing is decided.
    """

    def __init__(
        self,
        store: ModelStore,
        policy: Policy,
        batcher: AssessmentBatcher,
        audit: AuditTrail,
        metrics: ServiceMetrics,
        shadow: ShadowScorer | None = None,
    ) -> None:
        """``shadow``: a challenger scoring every applicant beside the champion (service.shadow);
        its scores are committed with the decisions, and never change an answer."""
        self.store = store
        self.shadow = shadow
        self.policy = policy
        self.batcher = batcher
        self.audit = audit
        self.metrics = metrics
        # The thresholds behind every decision, as the answer and the audit record give them.
        self.policy_json = JSONText(
            to_json(
                {
                    "approve_below": policy.approve_below,
                    "decline_at": policy.decline_at,
                    "risk_bands": dict(policy.bands),
                }
            ).decode()
        )

    async def score_one(
        self, body: bytes, request_id: str, api_key_name: str | None = None
    ) -> bytes:
        """One applicant's answer; its decision takes the request's id. ``api_key_name`` (the
        key that asked, None when the service runs open) goes into the audit record.

        It is assessed together with whatever other single applicants are waiting
        (:mod:`service.batching`), and its audit row joins theirs in one commit.
        """
        model = current_model(self.store)
        record = validate_body(model.records.one, body)
        # First, so that its pass runs in the same turn as the champion's: see service.shadow.
        shadow = None if self.shadow is None else self.shadow.one(model, record)
        probability, reason_codes = await self.batcher.assess(model.risk_model, record)
        decided = self._decide(model, [record], [request_id], None, [probability], api_key_name)
        decided.columns["reason_codes"] = JSONTextColumn([reason_codes])
        # A row dict, not columns: the audit converts the rows of concurrent requests together,
        # 16 in ~0.2 ms against ~0.55 ms as 16 one-row DecisionColumns.
        row = {name: values[0] for name, values in decided.columns.items()}
        row["reason_codes"] = JSONText(reason_codes)
        scored = None if shadow is None else await shadow  # settled already, never raises
        shadow_rows = None if scored is None else [ShadowScorer.row(request_id, scored)]
        await self._committed(self.audit.submit([{**row, **decided.shared}], shadow_rows))
        self.metrics.observe_scores([record], [probability], decided.columns["decision"])
        return _answers(decided)[0].encode()

    async def score_batch(
        self, body: bytes, batch_id: str, api_key_name: str | None = None
    ) -> bytes:
        """A batch's answers in input order, from one vectorised pass of its own; each applicant
        gets its own decision id, and the request's id becomes the batch id."""
        model = current_model(self.store)
        records = validate_body(model.records.many, body)
        assessment = self.batcher.assess_many(model.risk_model, records)
        probabilities = assessment.probabilities.tolist()
        ids = new_ids(len(records))
        decided = self._decide(model, records, ids, batch_id, probabilities, api_key_name)
        shadow = None if self.shadow is None else self.shadow.many(model, records)
        decided.columns["batch_index"] = range(len(records))
        # Each part's reason codes are written as it is made, and each part goes to the writer
        # process as soon as it is made: the writer inserts one while the next is written. The
        # answer is written from the parts the audit took, once it has taken them all.
        parts: list[DecisionColumns] = []

        def made() -> Iterator[DecisionColumns]:
            for start, stop in _parts(len(records)):
                parts.append(_part(decided, start, stop, assessment.reason_codes_json(start, stop)))
                yield parts[-1]

        committed = self.audit.submit_parts(
            made(), None if shadow is None else ShadowScorer.columns(ids, shadow)
        )
        # One turn of the event loop hands the group to the writer process; the answers are
        # then written here while the writer commits.
        await asyncio.sleep(0)
        answer = '{"results":[' + ",".join(itertools.chain.from_iterable(map(_answers, parts)))
        await self._committed(committed)
        # Counted at the event loop's next turn, once the answer is written: its 1,000
        # applicants take ~0.5 ms that the answer need not wait for.
        asyncio.get_running_loop().call_soon(
            self.metrics.observe_scores, records, probabilities, decided.columns["decision"]
        )
        return (answer + "]}").encode()

    def _decide(
        self,
        model: LoadedModel,
        records: list[dict[str, Any]],
        ids: list[str],
        batch_id: str | None,
        probabilities: list[float],
        api_key_name: str | None,
    ) -> DecisionColumns:
        """The decisions of a request's applicants, as audit columns (reason codes aside)."""
        if not all(map(math.isfinite, probabilities)):
            raise RuntimeError("the model gave a probability that is not a number")
        scores, bands, decisions = self.policy.apply(probabilities)
        return DecisionColumns(
            count=len(records),
            columns={
                "request_id": ids,
                "batch_index": [None] * len(records),
                "inputs": records,
                "probability_of_default": probabilities,
                "score": scores,
                "risk_band": bands,
                "decision": decisions,
            },
            shared={
                "created_at": datetime.now(UTC),
                "batch_id": batch_id,
                "model_name": model.name,
                "model_version": model.version,
                "run_id": model.run_id,
                "api_key_name": api_key_name,
                "policy": self.policy_json,
            },
        )

    async def _committed(self, commit: asyncio.Future[Any]) -> None:
        try:
            await commit
        except AuditUnavailable as exc:
            self.metrics.audit_failures.inc()
            raise ApiError(
                503,
                "audit_unavailable",
                "the decision could not be recorded; nothing was decided",
                {"reason": str(exc)},
            ) from None


def _part(decided: DecisionColumns, start: int, stop: int, reasons: list[str]) -> DecisionColumns:
    """Applicants ``start`` to ``stop`` of a request's decisions, with their reason codes."""
    columns: dict[str, Any] = {name: values[start:stop] for name, values in decided.columns.items()}
    columns["reason_codes"] = JSONTextColumn(reasons)
    return DecisionColumns(count=stop - start, columns=columns, shared=decided.shared)


def _answers(decided: DecisionColumns) -> list[str]:
    """Each applicant's ``ScoreResponse`` as JSON, from the decision columns.

    Each answer is one join of its fields' JSON and the text between them, in C: formatting a
    template with ``%`` instead cost ~4,000 instructions an applicant (callgrind).
    """
    shared = decided.shared
    model = {
        "name": shared["model_name"],
        "version": shared["model_version"],
        "run_id": shared["run_id"],
    }
    # Each answer is one join of its fields; a field the request shares (the policy) is written
    # once and repeated.
    pieces: list[Iterator[str]] = []
    for name, write in ANSWER_FIELDS.items():
        pieces.append(itertools.repeat(f'{"," if pieces else "{"}"{name}":'))
        if name in shared:
            pieces.append(itertools.repeat(write(shared[name])))
        else:
            pieces.append(map(write, decided.columns[name]))
    pieces.append(itertools.repeat(f',"model":{to_json(model).decode()}}}'))
    return list(map("".join, zip(*pieces, strict=False)))  # the repeats are endless


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
