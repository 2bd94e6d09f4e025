"""Stage 4, review: what a model-risk reviewer weighs before the model is used — how much each
feature matters, outcomes by protected group (adverse impact ratios, the screen), which inputs act
as proxies for a protected attribute, and the promotion gate's verdict against the baselines, the
current champion and, when asked for, a fairness floor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd

from training.fairness import fairness_gate, fairness_metrics, fairness_table, screen_lines
from training.gate import GateDecision, decide, score_champion
from training.proxies import PROXY_AUC_FLAG, proxy_metrics, proxy_table
from training.report import permutation_influence
from training.stages.evaluate import Evaluation
from training.stages.fit import Fitted
from training.stages.options import TrainOptions
from training.stages.prepare import Prepared


@dataclass(frozen=True)
class Review:
    """Feature influence (AUC drop per raw feature, largest first), the group table with its
    metrics and screen lines, the proxy table (strongest first), the gate."""

    influence: pd.Series
    fairness: pd.DataFrame
    decision: GateDecision
    proxies: pd.DataFrame = field(default_factory=pd.DataFrame)
    fairness_metrics: dict[str, float] = field(default_factory=dict)
    screen: list[str] = field(default_factory=list)

    @property
    def proxy_summary(self) -> str:
        """One line naming the flagged proxies, strongest first; empty without a proxy check."""
        return proxy_summary(self.proxies)


def proxy_summary(proxies: pd.DataFrame) -> str:
    """``Seniority for Age (AUC 0.78, 25-34), ...`` over the flagged lines of ``proxy_table``, or
    a sentence saying none is flagged; empty when the table is (nothing was checked)."""
    if proxies.empty:
        return ""
    flagged = proxies[proxies["flagged"]]
    if flagged.empty:
        return (
            f"no input predicts a protected group with AUC >= {PROXY_AUC_FLAG:.2f} "
            f"(strongest {proxies['auc'].iloc[0]:.2f}: {proxies['input'].iloc[0]})"
        )
    named = ", ".join(
        f"{row.input} for {row.attribute} (AUC {row.auc:.2f}, {row.group})"
        for row in flagged.itertuples(index=False)
    )
    return f"{len(flagged)} flagged (AUC >= {PROXY_AUC_FLAG:.2f}): {named}"


def fairness_review(
    prepared: Prepared, p_test: np.ndarray, threshold: float, options: TrainOptions
) -> tuple[pd.DataFrame, dict[str, float], pd.DataFrame]:
    """The fairness table of the test split at ``threshold``, its metrics with the proxy metrics,
    and the proxy table of the training split, as ``(fairness, metrics, proxies)``.

    Protected columns are read from the raw rows (``prepared.dataset.frame``), never from the
    model's inputs; the proxy table scores every model input against every protected attribute.
    """
    raw = prepared.dataset.frame
    contract = prepared.contract
    fairness = fairness_table(
        raw.iloc[prepared.split.test],
        prepared.y("test"),
        p_test,
        threshold,
        contract.protected,
    )
    proxies = proxy_table(
        raw.iloc[prepared.split.train],
        {spec.name: spec.kind for spec in contract.features},
        contract.protected,
        seed=options.seed,
    )
    return fairness, {**fairness_metrics(fairness), **proxy_metrics(proxies)}, proxies


def review(
    prepared: Prepared,
    fitted: Fitted,
    evaluation: Evaluation,
    options: TrainOptions,
    say: Callable[[str], None],
) -> Review:
    """Measure influence on the validation rows, fairness on the test rows and proxies on the
    training rows; log the ``fairness_*`` metrics; apply the gate."""
    say("evaluating: figures, fairness table, proxies, model card")
    influence = permutation_influence(
        fitted.risk_model, prepared.rows("validation"), prepared.y("validation"), options.seed
    )
    fairness, metrics, proxies = fairness_review(
        prepared, evaluation.p_test, evaluation.threshold, options
    )
    mlflow.log_metrics(metrics)
    mlflow.log_params(
        {
            "min_air": "off" if options.min_air is None else options.min_air,
            "air_screen": options.air_screen,
        }
    )
    champion = score_champion(options.register_as, prepared.rows("test"), prepared.y("test"))
    decision = decide(
        evaluation.test_metrics["roc_auc"],
        {name: m["roc_auc"] for name, m in evaluation.baseline_metrics.items()},
        champion,
        margin=options.gate_margin,
        force=options.force_promote,
        fairness_failure=fairness_gate(metrics, options.min_air),
    )
    if champion.auc is not None:
        mlflow.log_metric("champion_test_roc_auc", champion.auc)
    return Review(
        influence=influence,
        fairness=fairness,
        decision=decision,
        proxies=proxies,
        fairness_metrics=metrics,
        screen=screen_lines(fairness, options.air_screen),
    )
