"""Training: data → split → DNN and baselines → evaluation → MLflow run → gate → registry.

One parent MLflow run holds the DNN (its curves, model, figures, model card, fairness table and
reproducibility record). Three nested child runs — ``dnn``, ``logreg`` and ``lightgbm`` — carry
the same test metric names, so the MLflow UI compares them side by side.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from models.calibration import CalibrationMethod
from models.mlflow_flavor import input_example, log_risk_model, use_tracking
from models.network import NetworkConfig, sigmoid
from models.reference import TrainingReference
from models.risk_model import RiskModel
from training import plots
from training.baselines import BASELINES, baseline_params
from training.data import BUNDLED_DATA, Dataset, Split, load_dataset, stratified_split
from training.evaluate import (
    classification_metrics,
    ece_noise_floor,
    expected_calibration_error,
    ks_threshold,
)
from training.fairness import fairness_table
from training.fit import EpochReporter, MemberReporter
from training.gate import GateDecision, apply_decision, decide, score_champion
from training.pipeline import fit_dnn, resolve_config
from training.registry import model_name, register
from training.report import (
    CardInputs,
    architecture_layers,
    markdown_table,
    model_card,
    permutation_influence,
    typical_row,
)
from training.reproducibility import environment_record

DEFAULT_EXPERIMENT = "loan-default"
# Marks the experiment as model training, so the MLflow UI opens it on the runs table.
EXPERIMENT_KIND_TAG = {"mlflow.experimentKind": "custom_model_development"}
# Training rows drawn on the decision surface: enough to see the classes, few enough to see the
# surface.
SURFACE_POINTS = 1500


@dataclass(frozen=True)
class TrainOptions:
    data: Path = BUNDLED_DATA
    target: str | None = None
    positive_label: str | None = None
    schema: Path | None = None
    experiment: str = field(
        default_factory=lambda: os.environ.get("LOANRISK_EXPERIMENT", DEFAULT_EXPERIMENT)
    )
    seed: int = 0
    # None: the default recipe for the size of the training split (NetworkConfig.for_rows), with
    # ``network_overrides`` applied on top.
    network: NetworkConfig | None = None
    network_overrides: dict[str, Any] = field(default_factory=dict)
    register_as: str = field(default_factory=model_name)
    calibration: CalibrationMethod = "platt"
    # None: the cutoff with the largest KS gap on the validation split.
    threshold: float | None = None
    gate_margin: float = 0.0
    force_promote: bool = False


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


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items()}


def _fit_baselines(
    dataset: Dataset, split: Split, threshold: float, seed: int, say: Callable[[str], None]
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Fit each baseline on the training split; log it as a nested run with the DNN's metric
    names; return test metrics and test probabilities per baseline."""
    features, y = dataset.features, dataset.y
    metrics: dict[str, dict[str, float]] = {}
    probabilities: dict[str, np.ndarray] = {}
    for name, fit in BASELINES.items():
        say(f"baseline {name}")
        with mlflow.start_run(run_name=name, nested=True):
            mlflow.set_tags({"loanrisk.model_kind": "baseline", "loanrisk.baseline": name})
            mlflow.log_params({**baseline_params(name), "seed": seed})
            started = time.perf_counter()
            model = fit(features.iloc[split.train], y[split.train], dataset.contract, seed)
            fit_seconds = time.perf_counter() - started
            p_test = model.probability(features.iloc[split.test])
            p_val = model.probability(features.iloc[split.validation])
            metrics[name] = classification_metrics(y[split.test], p_test, threshold)
            probabilities[name] = p_test
            mlflow.log_metrics(_prefixed("test", metrics[name]))
            mlflow.log_metrics(
                _prefixed("validation", classification_metrics(y[split.validation], p_val))
            )
            mlflow.log_metric("fit_seconds", fit_seconds)
    return metrics, probabilities


def _log_figures(
    directory: Path,
    dataset: Dataset,
    split: Split,
    risk_model: RiskModel,
    config: NetworkConfig,
    histories: list[dict[str, list[float]]],
    test_probabilities: dict[str, np.ndarray],
    uncalibrated_test: np.ndarray,
    threshold: float,
    influence: pd.Series,
    seed: int,
) -> list[str]:
    """Draw every figure into ``directory`` and return notes on any that could not be drawn."""
    y_test = dataset.y[split.test]
    p_test = test_probabilities["dnn"]
    curves = {name: (y_test, p) for name, p in test_probabilities.items()}
    plots.roc_plot(curves, directory / "roc_curve.png")
    plots.precision_recall_plot(curves, directory / "precision_recall_curve.png")
    plots.reliability_plot(
        y_test,
        {"DNN calibrated": p_test, "DNN before calibration": uncalibrated_test},
        directory / "reliability.png",
    )
    plots.score_distribution_plot(y_test, p_test, directory / "score_distribution.png", threshold)
    plots.learning_curves_plot(histories, directory / "learning_curves.png")
    plots.architecture_plot(
        architecture_layers(risk_model, config),
        directory / "architecture.png",
        title=f"Network architecture ({len(risk_model.network.members)} seed ensemble)"
        if len(risk_model.network.members) > 1
        else "Network architecture",
    )
    notes = []
    numeric = [f.name for f in risk_model.contract.numeric]
    ranked = [name for name in influence.index if name in numeric]
    if len(ranked) >= 2:
        x_name, y_name = ranked[0], ranked[1]
        train_rows = dataset.features.iloc[split.train]
        rng = np.random.default_rng(seed)
        chosen = rng.choice(
            len(train_rows), size=min(SURFACE_POINTS, len(train_rows)), replace=False
        )
        logs = {t.name: t.log for t in risk_model.preprocessor.numeric}
        plots.decision_surface_plot(
            risk_model.score_frame,
            typical_row(train_rows, risk_model),
            x_name,
            y_name,
            train_rows.iloc[chosen],
            dataset.y[split.train][chosen],
            directory / "decision_surface.png",
            log_axes=(logs[x_name], logs[y_name]),
        )
    else:
        notes.append("decision surface not drawn: fewer than two numeric features")
    return notes


def train(
    options: TrainOptions,
    report: EpochReporter | None = None,
    say: Callable[[str], None] | None = None,
    on_member: MemberReporter | None = None,
) -> TrainResult:
    """Train, evaluate, log, gate and register one model version; raise DataError on unusable
    data."""
    say = say or (lambda _message: None)
    dataset = load_dataset(options.data, options.target, options.positive_label, options.schema)
    split = stratified_split(dataset.y, options.seed)
    uri = use_tracking()
    contract = dataset.contract
    features, y_all = dataset.features, dataset.y
    y = {
        "train": y_all[split.train],
        "validation": y_all[split.validation],
        "test": y_all[split.test],
    }
    config = resolve_config(options.network, len(split.train), options.network_overrides)
    environment = environment_record(dataset.sha256, options.seed)

    experiment_id = ensure_experiment(options.experiment)
    say(
        f"training on {dataset.path.name}: {len(dataset.frame)} rows, "
        f"{len(contract.features)} features, positive rate {y_all.mean():.3f}"
    )
    with mlflow.start_run(run_name=f"train {dataset.path.stem}") as run:
        mlflow.set_tags(
            {
                "loanrisk.stage": "train",
                "loanrisk.data_file": dataset.path.name,
                "loanrisk.model_kind": "dnn",
                "loanrisk.git_commit": environment["git"]["commit"],
            }
        )
        mlflow.log_params(
            {
                **config.to_params(),
                "seed": options.seed,
                "data_file": dataset.path.name,
                "data_sha256": dataset.sha256,
                "target": contract.target,
                "positive_label": contract.positive_label,
                "protected_columns": ",".join(contract.protected) or "none",
                "dropped_columns": ",".join(contract.dropped) or "none",
                "n_features_raw": len(contract.features),
                "calibration": options.calibration,
                "gate_margin": options.gate_margin,
                "force_promote": options.force_promote,
                "git_commit": environment["git"]["commit"],
                "git_dirty": environment["git"]["dirty"],
                "python_version": environment["python"],
                **{f"version_{k}": v for k, v in environment["packages"].items()},
            }
        )
        mlflow.log_metrics(
            {
                "rows_total": len(dataset.frame),
                "rows_train": len(split.train),
                "rows_validation": len(split.validation),
                "rows_test": len(split.test),
                "positive_rate_train": float(y["train"].mean()),
                "positive_rate_test": float(y["test"].mean()),
            }
        )
        started = time.perf_counter()
        dnn = fit_dnn(
            features,
            y_all,
            split.train,
            split.validation,
            contract,
            config,
            options.seed,
            calibration=options.calibration,
            report=report,
            on_member=on_member,
        )
        fit_seconds = time.perf_counter() - started
        risk_model = dnn.risk_model
        train_rows = features.iloc[split.train]
        # The typical applicant (explanation baseline) and the drift bins travel with the model.
        risk_model.reference = TrainingReference.fit(
            train_rows, contract, risk_model.preprocessor, risk_model.score_frame(train_rows)
        )
        mlflow.log_param("n_features_encoded", risk_model.preprocessor.width)
        p_val = risk_model.score_frame(features.iloc[split.validation])
        p_test = risk_model.score_frame(features.iloc[split.test])
        x_test = risk_model.preprocessor.transform(features.iloc[split.test])
        uncalibrated_test = sigmoid(risk_model.network.mean_logits(x_test))
        if options.threshold is None:
            threshold = ks_threshold(y["validation"], p_val)
            threshold_source = "largest KS gap on the validation split"
        else:
            threshold = float(options.threshold)
            threshold_source = "set by the user"
        test_metrics = classification_metrics(y["test"], p_test, threshold)
        validation_metrics = classification_metrics(y["validation"], p_val, threshold)
        ece_before = expected_calibration_error(y["test"], uncalibrated_test)
        noise_floor = ece_noise_floor(p_test, seed=options.seed)
        mlflow.log_metrics(_prefixed("test", test_metrics))
        mlflow.log_metrics(_prefixed("validation", validation_metrics))
        mlflow.log_metrics(
            {
                "test_ece_uncalibrated": ece_before,
                "test_ece_noise_floor": noise_floor,
                "operating_threshold": threshold,
                "best_epoch": dnn.fit.best_epoch,
                "epochs_run": dnn.fit.epochs_run,
                "fit_seconds": fit_seconds,
            }
        )
        mlflow.log_params(
            {
                "threshold_source": threshold_source,
                **{
                    f"calibration_{k}": v
                    for k, v in risk_model.calibrator.to_dict().items()
                    if k in ("a", "b")
                },
            }
        )
        with mlflow.start_run(run_name="dnn", nested=True):
            mlflow.set_tags({"loanrisk.model_kind": "dnn", "loanrisk.parent": run.info.run_id})
            mlflow.log_params(
                {**config.to_params(), "seed": options.seed, "calibration": options.calibration}
            )
            mlflow.log_metrics(_prefixed("test", test_metrics))
            mlflow.log_metrics(_prefixed("validation", validation_metrics))
            mlflow.log_metric("fit_seconds", fit_seconds)
        baseline_metrics, baseline_probabilities = _fit_baselines(
            dataset, split, threshold, options.seed, say
        )

        say("evaluating: figures, fairness table, model card")
        influence = permutation_influence(
            risk_model, features.iloc[split.validation], y["validation"], options.seed
        )
        raw_test = dataset.frame.iloc[split.test]
        fairness = fairness_table(raw_test, y["test"], p_test, threshold, contract.protected)

        champion = score_champion(options.register_as, features.iloc[split.test], y["test"])
        decision = decide(
            test_metrics["roc_auc"],
            {name: m["roc_auc"] for name, m in baseline_metrics.items()},
            champion,
            margin=options.gate_margin,
            force=options.force_promote,
        )
        if champion.auc is not None:
            mlflow.log_metric("champion_test_roc_auc", champion.auc)

        risk_model.metadata = {
            "run_id": run.info.run_id,
            "data_file": dataset.path.name,
            "data_sha256": dataset.sha256,
            "seed": options.seed,
            "network": config.to_params(),
            "calibration": risk_model.calibrator.to_dict(),
            "decision_threshold": threshold,
            "threshold_source": threshold_source,
            "test_metrics": test_metrics,
            "validation_metrics": validation_metrics,
            "baseline_test_metrics": baseline_metrics,
            "rows": {k: len(v) for k, v in y.items()},
            "git_commit": environment["git"]["commit"],
        }
        example = input_example(features.iloc[split.train], contract)
        risk_model.metadata["example_applicant"] = {
            key: (value.item() if hasattr(value, "item") else value)
            for key, value in example.iloc[0].to_dict().items()
        }
        card = model_card(
            CardInputs(
                model_name=options.register_as,
                run_id=run.info.run_id,
                data_file=dataset.path.name,
                data_sha256=dataset.sha256,
                rows={k: len(v) for k, v in y.items()},
                positive_rates={k: float(v.mean()) for k, v in y.items()},
                risk_model=risk_model,
                config=config,
                seed=options.seed,
                epochs_run=[len(h.get("loss", [])) for h in dnn.fit.histories],
                threshold=threshold,
                threshold_source=threshold_source,
                metrics={"dnn": test_metrics, **baseline_metrics},
                ece_uncalibrated=ece_before,
                ece_noise_floor=noise_floor,
                fairness=fairness,
                influence=influence,
                gate_outcome=decision.outcome,
                gate_alias=decision.alias,
                gate_reason=decision.reason,
                environment=environment,
            )
        )
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            figures = root / "plots"
            figures.mkdir()
            notes = _log_figures(
                figures,
                dataset,
                split,
                risk_model,
                config,
                dnn.fit.histories,
                {"dnn": p_test, **baseline_probabilities},
                uncalibrated_test,
                threshold,
                influence,
                options.seed,
            )
            if notes:
                card += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
            mlflow.log_artifacts(str(figures), artifact_path="plots")
            evaluation = root / "evaluation"
            evaluation.mkdir()
            (evaluation / "model_card.md").write_text(card)
            fairness.to_csv(evaluation / "fairness.csv", index=False)
            (evaluation / "fairness.md").write_text(
                markdown_table(fairness, ".3f") + "\n"
                if not fairness.empty
                else "No protected columns declared.\n"
            )
            influence.rename_axis("feature").reset_index().to_csv(
                evaluation / "feature_influence.csv", index=False
            )
            (evaluation / "reproducibility.json").write_text(
                json.dumps(environment, indent=2) + "\n"
            )
            mlflow.log_artifacts(str(evaluation), artifact_path="evaluation")

            model_dir = root / "risk_model"
            risk_model.save(model_dir, keras_model=dnn.fit.model)
            info = log_risk_model(model_dir, contract, features.iloc[split.train])
        registration = register(info.model_uri, options.register_as, decision.alias)
        apply_decision(registration.name, registration.version, run.info.run_id, decision)
        mlflow.set_tag("loanrisk.registered_version", registration.version)
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_name=registration.name,
        version=registration.version,
        alias=decision.alias,
        test_metrics=test_metrics,
        epochs_run=dnn.fit.epochs_run,
        tracking_uri=uri,
        baseline_metrics=baseline_metrics,
        gate=decision,
        threshold=threshold,
    )


def summarise(metrics: dict[str, Any]) -> str:
    """One line of the headline test metrics."""
    return (
        f"ROC AUC {metrics['roc_auc']:.4f}  KS {metrics['ks']:.4f}  "
        f"Brier {metrics['brier']:.4f}  ECE {metrics['ece']:.4f}"
    )
