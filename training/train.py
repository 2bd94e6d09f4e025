"""Training: one MLflow run through six stages, each in its own module under ``training/stages``.

    prepare → fit → evaluate → review → document → register

Each stage hands a frozen result to the next. One parent MLflow run holds the DNN (its curves,
model, figures, model card, fairness table and reproducibility record). Three nested child runs —
``dnn``, ``logreg`` and ``lightgbm`` — carry the same test metric names, so the MLflow UI compares
them side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlflow

from models.mlflow_flavor import use_tracking
from training.fit import EpochReporter, MemberReporter
from training.gate import GateDecision
from training.stages.document import document
from training.stages.evaluate import evaluate
from training.stages.fit import fit
from training.stages.options import TrainOptions
from training.stages.prepare import log_prepared, prepare
from training.stages.register import register_version
from training.stages.review import review

__all__ = ["TrainOptions", "TrainResult", "ensure_experiment", "summarise", "train"]

# Marks the experiment as model training, so the MLflow UI opens it on the runs table.
EXPERIMENT_KIND_TAG = {"mlflow.experimentKind": "custom_model_development"}


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    model_name: str
    version: str
    alias: str
    test_metrics: dict[str, float]
    epochs_run: int
    tracking_uri: str
    baseline_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    gate: GateDecision | None = None
    threshold: float | None = None
    # The fairness screen's lines for the summary, and the fairness_* metrics logged on the run.
    fairness_screen: list[str] = field(default_factory=list)
    fairness_metrics: dict[str, float] = field(default_factory=dict)
    proxy_summary: str = ""


def ensure_experiment(name: str) -> str:
    """Create the experiment if needed, tagged as model training; return its id."""
    experiment = mlflow.get_experiment_by_name(name)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment(name, tags=EXPERIMENT_KIND_TAG)
    )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def train(
    options: TrainOptions,
    report: EpochReporter | None = None,
    say: Callable[[str], None] | None = None,
    on_member: MemberReporter | None = None,
) -> TrainResult:
    """Train, evaluate, log, gate and register one model version; raise DataError on unusable
    data (before anything is logged). ``report`` hears each epoch, ``on_member`` each ensemble
    member, ``say`` one line per stage."""
    say = say or (lambda _message: None)
    prepared = prepare(options)
    uri = use_tracking()
    experiment_id = ensure_experiment(options.experiment)
    say(prepared.summary())
    with mlflow.start_run(run_name=f"train {prepared.dataset.path.stem}") as run:
        run_id = run.info.run_id
        log_prepared(prepared, options)
        fitted = fit(prepared, options, report, on_member)
        evaluation = evaluate(prepared, fitted, options, run_id, say)
        reviewed = review(prepared, fitted, evaluation, options, say)
        risk_model = document(prepared, fitted, evaluation, reviewed, options, run_id)
        registration = register_version(
            prepared, fitted, risk_model, reviewed.decision, options, run_id
        )
    return TrainResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=registration.name,
        version=registration.version,
        alias=reviewed.decision.alias,
        test_metrics=evaluation.test_metrics,
        epochs_run=fitted.network_fit.epochs_run,
        tracking_uri=uri,
        baseline_metrics=evaluation.baseline_metrics,
        gate=reviewed.decision,
        threshold=evaluation.threshold,
        fairness_screen=reviewed.screen,
        fairness_metrics=reviewed.fairness_metrics,
        proxy_summary=reviewed.proxy_summary,
    )


def summarise(metrics: dict[str, Any]) -> str:
    """One line of the headline test metrics."""
    return (
        f"ROC AUC {metrics['roc_auc']:.4f}  KS {metrics['ks']:.4f}  "
        f"Brier {metrics['brier']:.4f}  ECE {metrics['ece']:.4f}"
    )
