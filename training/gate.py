"""The promotion gate: who gets the ``champion`` alias.

A new version becomes champion only if its test AUC is at least the current champion's AUC *on the
same test rows* plus a margin, it beats every baseline and, when a fairness floor is set
(``loanrisk train --min-air``), its lowest adverse impact ratio is not below it. Otherwise it is
registered as ``challenger`` and the run is tagged with the reason. A forced promotion skips the
gate and says so on the run, with every rule it overrode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from models.registered import load_registered
from training.registry import CHAMPION, alias_version

CHALLENGER = "challenger"

TAG_DECISION = "loanrisk.gate"
TAG_REASON = "loanrisk.gate_reason"
TAG_FORCED = "loanrisk.force_promote"


@dataclass(frozen=True)
class ChampionScore:
    """The current champion measured on the candidate's test rows."""

    version: str | None = None
    auc: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    candidate_auc: float
    forced: bool = False
    margin: float = 0.0
    champion: ChampionScore = field(default_factory=ChampionScore)
    baseline_aucs: dict[str, float] = field(default_factory=dict)

    @property
    def alias(self) -> str:
        return CHAMPION if self.promote else CHALLENGER

    @property
    def outcome(self) -> str:
        if self.forced:
            return "forced"
        return "promoted" if self.promote else "held"

    def tags(self) -> dict[str, str]:
        return {
            TAG_DECISION: self.outcome,
            TAG_REASON: self.reason,
            TAG_FORCED: str(self.forced).lower(),
            "loanrisk.alias": self.alias,
        }


def score_champion(name: str, features: pd.DataFrame, y: np.ndarray) -> ChampionScore:
    """Load the current champion (NumPy path) and measure its AUC on ``features``/``y``.

    A champion that cannot score these rows (other features, a broken artifact) is reported with
    the reason rather than raising: the gate then refuses to promote without ``--force-promote``.
    """
    version = alias_version(name, CHAMPION)
    if version is None:
        return ChampionScore()
    try:
        champion = load_registered(name, version=version).risk_model
        probability = champion.score_frame(features)
        return ChampionScore(version=version, auc=float(roc_auc_score(y, probability)))
    except Exception as exc:  # any failure to load or score means "not comparable"
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ChampionScore(version=version, error=message)


def decide(
    candidate_auc: float,
    baseline_aucs: dict[str, float],
    champion: ChampionScore,
    margin: float = 0.0,
    force: bool = False,
    fairness_failure: str | None = None,
) -> GateDecision:
    """Apply the gate's rules; every failed rule is named in the reason.

    ``fairness_failure`` is :func:`training.fairness.fairness_gate`'s reason to hold the version
    back (None: the fairness rule passed or is off); it is one more failed rule, recorded like the
    others, also in a forced promotion.
    """
    failures: list[str] = []
    passes: list[str] = []
    if champion.version is None:
        passes.append("no current champion")
    elif champion.auc is None:
        failures.append(
            f"current champion version {champion.version} could not be scored on this test split "
            f"({champion.error})"
        )
    elif candidate_auc < champion.auc + margin:
        failures.append(
            f"test AUC {candidate_auc:.4f} is below champion version {champion.version}'s "
            f"{champion.auc:.4f} plus margin {margin:g}"
        )
    else:
        passes.append(
            f"test AUC {candidate_auc:.4f} ≥ champion version {champion.version}'s "
            f"{champion.auc:.4f} plus margin {margin:g}"
        )
    for name, auc in sorted(baseline_aucs.items()):
        if candidate_auc > auc:
            passes.append(f"beats {name} ({auc:.4f})")
        else:
            failures.append(f"test AUC {candidate_auc:.4f} does not beat {name}'s {auc:.4f}")
    if fairness_failure:
        failures.append(fairness_failure)

    def decision(promote: bool, reason: str, forced: bool = False) -> GateDecision:
        return GateDecision(
            promote,
            reason,
            forced=forced,
            candidate_auc=candidate_auc,
            margin=margin,
            champion=champion,
            baseline_aucs=dict(baseline_aucs),
        )

    if force:
        why = "; ".join(failures) if failures else "the gate would have passed"
        return decision(True, f"forced promotion ({why})", forced=True)
    if failures:
        return decision(False, "; ".join(failures))
    return decision(True, "; ".join(passes))


def apply_decision(name: str, version: str, run_id: str, decision: GateDecision) -> str:
    """Point the decision's alias at ``version`` and record the decision on the run and version."""
    client = MlflowClient()
    client.set_registered_model_alias(name, decision.alias, version)
    for key, value in decision.tags().items():
        client.set_tag(run_id, key, value)
        client.set_model_version_tag(name, version, key, value)
    return decision.alias
