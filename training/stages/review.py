"""Stage 4, review: what a model-risk reviewer weighs before the model is used — how much each
feature matters, outcomes by protected group, and the promotion gate's verdict against the
baselines and the current champion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mlflow
import pandas as pd

from training.fairness import fairness_table
from training.gate import GateDecision, decide, score_champion
from training.report import permutation_influence
from training.stages.evaluate import Evaluation
from training.stages.fit import Fitted
from training.stages.options import TrainOptions
from training.stages.prepare import Prepared


@dataclass(frozen=True)
class Review:
    """Feature influence (AUC drop per raw feature, largest first), the group table, the gate."""

    influence: pd.Series
    fairness: pd.DataFrame
    decision: GateDecision


def review(
    prepared: Prepared,
    fitted: Fitted,
    evaluation: Evaluation,
    options: TrainOptions,
    say: Callable[[str], None],
) -> Review:
    """Measure influence on the validation rows and fairness on the test rows; apply the gate."""
    say("evaluating: figures, fairness table, model card")
    influence = permutation_influence(
        fitted.risk_model, prepared.rows("validation"), prepared.y("validation"), options.seed
    )
    raw_test = prepared.dataset.frame.iloc[prepared.split.test]
    fairness = fairness_table(
        raw_test,
        prepared.y("test"),
        evaluation.p_test,
        evaluation.threshold,
        prepared.contract.protected,
    )
    champion = score_champion(options.register_as, prepared.rows("test"), prepared.y("test"))
    decision = decide(
        evaluation.test_metrics["roc_auc"],
        {name: m["roc_auc"] for name, m in evaluation.baseline_metrics.items()},
        champion,
        margin=options.gate_margin,
        force=options.force_promote,
    )
    if champion.auc is not None:
        mlflow.log_metric("champion_test_roc_auc", champion.auc)
    return Review(influence=influence, fairness=fairness, decision=decision)
