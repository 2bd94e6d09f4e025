"""A challenger scored in the shadow of the champion (``LOANRISK_SHADOW_ALIAS``).

Every applicant the champion decides is also scored by the challenger, on the same validated
records: its probability of default (no reason codes) and its decision under the same policy.
Those go to the audit table ``shadow_scores``, committed in the same transaction as the
champion's decisions; the answer, decision and reason codes stay the champion's alone.

The time the shadow may add is bounded:

- it is one vectorised pass per round: a batch request's applicants together, and single
  applicants together with the others of their event-loop turn, in that same turn as the
  champion's pass (so a request waits one extra pass, never an extra turn of the loop);
- the pass is probability only: the reason codes, most of the champion's cost, are not computed;
- a pass that takes longer than ``budget_s`` (``LOANRISK_SHADOW_BUDGET_MS``) pauses the shadow for
  ``pause_s`` (``LOANRISK_SHADOW_PAUSE_S``): no request waits more than one over-budget pass
  before the shadow steps aside;
- a failure of any kind (no challenger loaded, another contract, an exception, a probability
  that is not a number) is caught and counted (``loanrisk_shadow_failures_total{reason}``), and
  the request is answered without shadow rows.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, datetime
from typing import Any

from service.audit import DecisionColumns
from service.decisioning import Policy
from service.metrics import ServiceMetrics
from service.model_store import LoadedModel, ModelStore

logger = logging.getLogger("loanrisk.shadow")

# A challenger's probability and decision for one applicant.
ShadowScore = tuple[float, str]
# The challenger version that scored a round, and each applicant's score.
Scored = tuple[LoadedModel, list[ShadowScore]]
# One applicant's: the version, and its score.
ScoredOne = tuple[LoadedModel, ShadowScore]


class ShadowScorer:
    """Scores a round of applicants with the challenger ``store`` serves; never raises."""

    def __init__(
        self,
        store: ModelStore,
        policy: Policy,
        metrics: ServiceMetrics,
        budget_s: float,
        pause_s: float,
    ) -> None:
        self.store = store
        self.policy = policy
        self.metrics = metrics
        self.budget_s = budget_s
        self.pause_s = pause_s
        self.paused_until = 0.0  # time.monotonic()
        # (id(champion), id(challenger)) last found to share a contract: checked once per pair.
        self._compatible: tuple[int, int] | None = None
        self._pending: list[tuple[dict[str, Any], asyncio.Future[ScoredOne | None]]] = []
        self._round_champion: LoadedModel | None = None

    def one(
        self, champion: LoadedModel, record: dict[str, Any]
    ) -> asyncio.Future[ScoredOne | None]:
        """A single applicant's shadow score, from a pass run at the event loop's next turn with
        the others of this turn (call it before awaiting the champion's assessment: both passes
        then run in the same turn). The future resolves to None when the shadow failed; it never
        raises."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ScoredOne | None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._run)
        self._pending.append((record, future))
        self._round_champion = champion
        return future

    def _run(self) -> None:
        pending, self._pending = self._pending, []
        champion, self._round_champion = self._round_champion, None
        assert champion is not None
        scored = self.many(champion, [record for record, _ in pending])
        for index, (_, future) in enumerate(pending):
            if not future.done():  # else its request was cancelled
                future.set_result(None if scored is None else (scored[0], scored[1][index]))

    def many(self, champion: LoadedModel, records: list[dict[str, Any]]) -> Scored | None:
        """The challenger and each applicant's shadow score, in one pass now; None (counted)
        when the shadow failed.

        ``records``: validated by ``champion``'s validator; a challenger with another contract is
        not asked to score them.
        """
        challenger, reason = self._challenger(champion)
        if challenger is None:
            self.metrics.shadow_failures.labels(reason).inc(len(records))
            return None
        started = time.monotonic()
        try:
            probabilities = challenger.risk_model.score_records(records).tolist()
            if not all(map(math.isfinite, probabilities)):
                raise ValueError("the challenger gave a probability that is not a number")
            _, _, decisions = self.policy.apply(probabilities)
        except Exception:
            logger.exception("shadow scoring failed")
            self.metrics.shadow_failures.labels("error").inc(len(records))
            return None
        finally:
            spent = time.monotonic() - started
            if spent > self.budget_s:
                self.paused_until = time.monotonic() + self.pause_s
                logger.warning(
                    "shadow pass of %d applicants took %.1f ms, over its budget of %.1f ms: "
                    "paused for %.0f s",
                    len(records),
                    spent * 1000,
                    self.budget_s * 1000,
                    self.pause_s,
                )
        self.metrics.shadow_scored.inc(len(records))
        return challenger, list(zip(probabilities, decisions, strict=True))

    def _challenger(self, champion: LoadedModel) -> tuple[LoadedModel | None, str]:
        """The challenger to score with now, or None and why not."""
        challenger = self.store.current
        if challenger is None:
            return None, "no_challenger"
        if time.monotonic() < self.paused_until:
            return None, "paused"
        pair = (id(champion), id(challenger))
        if pair != self._compatible:
            # The store refuses a challenger with another contract than the champion's at load;
            # this catches one loaded before the champion was.
            if challenger.risk_model.contract.to_dict() != champion.risk_model.contract.to_dict():
                return None, "contract"
            self._compatible = pair
        return challenger, ""

    @staticmethod
    def row(request_id: str, scored: ScoredOne) -> dict[str, Any]:
        """One ``shadow_scores`` row (a dict of every column) for a single applicant."""
        challenger, (probability, decision) = scored
        return {
            "request_id": request_id,
            "model_name": challenger.name,
            "model_version": challenger.version,
            "alias": challenger.alias,
            "probability_of_default": probability,
            "decision": decision,
            "scored_at": datetime.now(UTC),
        }

    @staticmethod
    def columns(request_ids: list[str], round_: Scored) -> DecisionColumns:
        """A batch's ``shadow_scores`` rows, column by column."""
        challenger, scored = round_
        return DecisionColumns(
            count=len(scored),
            columns={
                "request_id": request_ids,
                "probability_of_default": [p for p, _ in scored],
                "decision": [d for _, d in scored],
            },
            shared={
                "model_name": challenger.name,
                "model_version": challenger.version,
                "alias": challenger.alias,
                "scored_at": datetime.now(UTC),
            },
        )
