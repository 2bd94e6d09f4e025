"""Training: data → split → preprocessing → DNN → evaluation → MLflow run → registry."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow

from models.mlflow_flavor import input_example, log_risk_model, use_tracking
from models.network import DenseStack, NetworkConfig
from models.preprocessing import Preprocessor
from models.reference import TrainingReference
from models.risk_model import RiskModel
from training.data import BUNDLED_DATA, load_dataset, stratified_split
from training.evaluate import classification_metrics
from training.fit import EpochReporter, fit_network
from training.registry import CHAMPION, model_name, register

DEFAULT_EXPERIMENT = "loan-default"
# Marks the experiment as model training, so the MLflow UI opens it on the runs table.
EXPERIMENT_KIND_TAG = {"mlflow.experimentKind": "custom_model_development"}


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
    network: NetworkConfig = field(default_factory=NetworkConfig)
    register_as: str = field(default_factory=model_name)


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
) -> TrainResult:
    """Train, evaluate, log and register one model version; raise DataError on unusable data."""
    say = say or (lambda _message: None)
    dataset = load_dataset(options.data, options.target, options.positive_label, options.schema)
    split = stratified_split(dataset.y, options.seed)
    uri = use_tracking()
    contract = dataset.contract
    features = dataset.features
    train_rows = features.iloc[split.train]
    preprocessor = Preprocessor.fit(train_rows, contract)
    x = {
        name: preprocessor.transform(features.iloc[rows])
        for name, rows in (
            ("train", split.train),
            ("validation", split.validation),
            ("test", split.test),
        )
    }
    y = {
        "train": dataset.y[split.train],
        "validation": dataset.y[split.validation],
        "test": dataset.y[split.test],
    }

    experiment_id = ensure_experiment(options.experiment)
    say(
        f"training on {dataset.path.name}: {len(dataset.frame)} rows, "
        f"{len(contract.features)} features, positive rate {dataset.y.mean():.3f}"
    )
    with mlflow.start_run() as run:
        mlflow.set_tags({"loanrisk.stage": "train", "loanrisk.data_file": dataset.path.name})
        mlflow.log_params(
            {
                **options.network.to_params(),
                "seed": options.seed,
                "data_file": dataset.path.name,
                "data_sha256": dataset.sha256,
                "target": contract.target,
                "positive_label": contract.positive_label,
                "protected_columns": ",".join(contract.protected) or "none",
                "dropped_columns": ",".join(contract.dropped) or "none",
                "n_features_raw": len(contract.features),
                "n_features_encoded": preprocessor.width,
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
        fitted = fit_network(
            x["train"],
            y["train"],
            x["validation"],
            y["validation"],
            options.network,
            options.seed,
            report,
        )
        risk_model = RiskModel(contract, preprocessor, DenseStack.from_keras(fitted.model))
        risk_model.reference = TrainingReference.fit(
            train_rows, contract, preprocessor, risk_model.network.probabilities(x["train"])
        )
        test_metrics = classification_metrics(
            y["test"], risk_model.network.probabilities(x["test"])
        )
        validation_metrics = classification_metrics(
            y["validation"], risk_model.network.probabilities(x["validation"])
        )
        mlflow.log_metrics({f"test_{k}": v for k, v in test_metrics.items()})
        mlflow.log_metrics({f"validation_{k}": v for k, v in validation_metrics.items()})
        mlflow.log_metrics({"best_epoch": fitted.best_epoch, "epochs_run": fitted.epochs_run})
        risk_model.metadata = {
            "run_id": run.info.run_id,
            "data_file": dataset.path.name,
            "data_sha256": dataset.sha256,
            "seed": options.seed,
            "network": options.network.to_params(),
            "test_metrics": test_metrics,
            "validation_metrics": validation_metrics,
            "rows": {k: len(v) for k, v in y.items()},
        }
        example = input_example(features.iloc[split.train], contract)
        risk_model.metadata["example_applicant"] = {
            key: (value.item() if hasattr(value, "item") else value)
            for key, value in example.iloc[0].to_dict().items()
        }
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = Path(tmp) / "risk_model"
            risk_model.save(model_dir, keras_model=fitted.model)
            info = log_risk_model(model_dir, contract, features.iloc[split.train])
        registration = register(info.model_uri, options.register_as, CHAMPION)
        mlflow.set_tags(
            {
                "loanrisk.registered_version": registration.version,
                "loanrisk.alias": registration.alias,
            }
        )
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_name=registration.name,
        version=registration.version,
        alias=registration.alias,
        test_metrics=test_metrics,
        epochs_run=fitted.epochs_run,
        tracking_uri=uri,
    )
