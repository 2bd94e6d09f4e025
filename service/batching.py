"""Dynamic batching: concurrent single-applicant requests are assessed in one vectorised pass.

Scoring one applicant is a few dozen small NumPy calls whose cost hardly depends on the number of
rows, so requests that arrive together share them. Nothing waits for company: the first request of
a round schedules the pass for the event loop's next turn, and every request that reaches this
point before then (typically those whose bytes arrived in the same read of the sockets) joins it.
Each applicant's numbers are the ones it would get alone, up to float32 rounding in the matrix
products (whose blocking depends on the number of rows): probabilities agree within 1e-7, and the
tests hold them to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from models.explain import ChunkThreads
from models.risk_model import RiskModel, SerialisedAssessment

logger = logging.getLogger("loanrisk.batching")

# An applicant's calibrated probability of default and reason codes (a JSON array).
Assessed = tuple[float, str]


class AssessmentBatcher:
    """Collects ``(model, record)`` pairs for one turn of the event loop, then assesses them."""

    def __init__(
        self,
        max_reasons: int,
        reason_steps: int | None,
        on_round: Callable[[int], None] | None = None,
        threads: int = 1,  # explaining a large pass, the event loop's thread included
    ) -> None:
        self.max_reasons = max_reasons
        self.reason_steps = reason_steps
        self.on_round = on_round  # told the size of every pass (a metrics histogram)
        self._pending: list[tuple[RiskModel, dict[str, Any], asyncio.Future[Assessed]]] = []
        # Explain the chunks of large passes beside the event loop's thread.
        self._threads = ChunkThreads(threads - 1) if threads > 1 else None

    def assess_many(self, model: RiskModel, records: list[dict[str, Any]]) -> SerialisedAssessment:
        """Assess a batch request's applicants now, in one pass of their own."""
        return model.assess_serialised(records, self.max_reasons, self.reason_steps, self._threads)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.close()

    async def assess(self, model: RiskModel, record: dict[str, Any]) -> Assessed:
        """The calibrated probability of default and the reason codes (JSON) of one applicant."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Assessed] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._run)
        self._pending.append((model, record, future))
        return await future

    def _run(self) -> None:
        pending, self._pending = self._pending, []
        if self.on_round is not None:
            self.on_round(len(pending))
        # A reload may swap the model between two requests of one round: group by model.
        by_model: dict[int, list[tuple[RiskModel, dict[str, Any], asyncio.Future[Assessed]]]] = {}
        for item in pending:
            by_model.setdefault(id(item[0]), []).append(item)
        for items in by_model.values():
            self._assess_group(items)

    def _assess_group(
        self, items: list[tuple[RiskModel, dict[str, Any], asyncio.Future[Assessed]]]
    ) -> None:
        model = items[0][0]
        try:
            assessment = self.assess_many(model, [record for _, record, _ in items])
        except Exception:
            if len(items) > 1:
                # Never let one applicant fail the others: assess each alone.
                for item in items:
                    self._assess_group([item])
                return
            logger.exception("assessment failed")
            _settle(items[0][2], exception=RuntimeError("assessment failed"))
            return
        probabilities = assessment.probabilities.tolist()
        for (_, _, future), probability, reason_codes in zip(
            items, probabilities, assessment.reason_codes_json(), strict=True
        ):
            _settle(future, result=(probability, reason_codes))


def _settle(
    future: asyncio.Future[Assessed],
    result: Assessed | None = None,
    exception: BaseException | None = None,
) -> None:
    if future.done():  # the request was cancelled (client gone)
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        assert result is not None
        future.set_result(result)
