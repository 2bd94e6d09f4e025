"""A champion against a challenger on the same live applicants: ``loanrisk monitor --compare``.

A version's answer for an applicant is its decision (``decisions``, when it was the version
serving) or its shadow score (``shadow_scores``, when it scored beside the one serving). The
comparison covers the applicants both versions scored and that have an outcome; the swap sets
(approved by one, declined by the other) cover every applicant both scored, with observed default
rates where outcomes exist: those declined by the version that was serving have none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from monitoring.stats import PairedTest, delong_paired, observed_to_expected
from service.audit.schema import decisions, outcomes, shadow_scores


def read_scores(engine: Engine, model_name: str, version: str) -> pd.DataFrame:
    """Every applicant ``version`` of ``model_name`` scored: columns request_id,
    probability_of_default, decision, served (True: from ``decisions``; False: a shadow score)."""
    served = select(
        decisions.c.request_id, decisions.c.probability_of_default, decisions.c.decision
    ).where(decisions.c.model_name == model_name, decisions.c.model_version == version)
    shadow = select(
        shadow_scores.c.request_id, shadow_scores.c.probability_of_default, shadow_scores.c.decision
    ).where(shadow_scores.c.model_name == model_name, shadow_scores.c.model_version == version)
    columns = ["request_id", "probability_of_default", "decision"]
    with engine.connect() as connection:
        a = pd.DataFrame(connection.execute(served).all(), columns=columns).assign(served=True)
        b = pd.DataFrame(connection.execute(shadow).all(), columns=columns).assign(served=False)
    return pd.concat([a, b], ignore_index=True).drop_duplicates("request_id", keep="first")


def read_outcomes(engine: Engine) -> pd.DataFrame:
    """Columns request_id, defaulted (bool)."""
    with engine.connect() as connection:
        rows = connection.execute(select(outcomes.c.request_id, outcomes.c.defaulted)).all()
    return pd.DataFrame(rows, columns=["request_id", "defaulted"])


@dataclass(frozen=True)
class SwapSet:
    """Applicants approved by ``approved_by`` and declined by the other version."""

    approved_by: str
    applicants: int
    with_outcome: int
    defaults: int

    @property
    def observed_default_rate(self) -> float | None:
        return self.defaults / self.with_outcome if self.with_outcome else None


@dataclass(frozen=True)
class Comparison:
    """The evidence for promoting ``challenger`` over ``champion`` (version numbers)."""

    model_name: str
    champion: str
    challenger: str
    both_scored: int
    with_outcome: int
    defaults: int
    test: PairedTest | None  # None without both defaulted and repaid outcomes
    champion_predicted_rate: float | None
    challenger_predicted_rate: float | None
    observed_rate: float | None
    champion_observed_to_expected: float | None
    challenger_observed_to_expected: float | None
    swaps: tuple[SwapSet, SwapSet]


def compare(engine: Engine, model_name: str, champion: str, challenger: str) -> Comparison:
    """Compare two versions of ``model_name`` on the applicants both scored (see the module)."""
    a = read_scores(engine, model_name, champion)
    b = read_scores(engine, model_name, challenger)
    both = a.merge(b, on="request_id", suffixes=("_a", "_b"))
    both = both.merge(read_outcomes(engine), on="request_id", how="left")
    known = both[both["defaulted"].notna()]
    labels = known["defaulted"].astype(bool).to_numpy().astype(int)
    pa = known["probability_of_default_a"].to_numpy(dtype=np.float64)
    pb = known["probability_of_default_b"].to_numpy(dtype=np.float64)
    test = None
    if 0 < labels.sum() < len(labels):
        test = delong_paired(labels, pa, pb)

    def swap(approved: str, declined: str, name: str) -> SwapSet:
        rows = both[
            (both[f"decision_{approved}"] == "approve")
            & (both[f"decision_{declined}"] == "decline")
        ]
        seen = rows[rows["defaulted"].notna()]
        return SwapSet(name, len(rows), len(seen), int(seen["defaulted"].astype(bool).sum()))

    has = len(known) > 0
    return Comparison(
        model_name=model_name,
        champion=champion,
        challenger=challenger,
        both_scored=len(both),
        with_outcome=len(known),
        defaults=int(labels.sum()),
        test=test,
        champion_predicted_rate=float(pa.mean()) if has else None,
        challenger_predicted_rate=float(pb.mean()) if has else None,
        observed_rate=float(labels.mean()) if has else None,
        champion_observed_to_expected=observed_to_expected(labels, pa) if has else None,
        challenger_observed_to_expected=observed_to_expected(labels, pb) if has else None,
        swaps=(swap("a", "b", champion), swap("b", "a", challenger)),
    )
