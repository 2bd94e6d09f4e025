"""Stage 3, evaluate: score the validation and test rows, choose the operating threshold, measure
the DNN, and fit and measure the baselines on the same rows. The DNN and each baseline get a nested
run with the same test metric names, so the MLflow UI compares them side by side."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from models.network import sigmoid
from models.registered import TEST_SCORES_ARTIFACT
from training.baselines import BASELINES, baseline_params, baseline_sample
from training.evaluate import (
    classification_metrics,
    ece_noise_floor,
    expected_calibration_error,
    ks_threshold,
)
from training.stages.fit import Fitted
from training.stages.options import TrainOptions
from training.stages.prepare import Prepared


@dataclass(frozen=True)
class Evaluation:
    """Probabilities (float64, one per row) and metrics of the DNN and the baselines."""

    p_validation: np.ndarray
    p_test: np.ndarray
    uncalibrated_test: np.ndarray  # the sigmoid of the network's logit, before calibration
    threshold: float
    threshold_source: str
    test_metrics: dict[str, float]
    validation_metrics: dict[str, float]
    ece_uncalibrated: float
    ece_noise_floor: float
    baseline_metrics: dict[str, dict[str, float]]
    baseline_probabilities: dict[str, np.ndarray]

    @property
    def test_probabilities(self) -> dict[str, np.ndarray]:
        """Test probabilities of every model, the DNN first."""
        return {"dnn": self.p_test, **self.baseline_probabilities}

    @property
    def all_test_metrics(self) -> dict[str, dict[str, float]]:
        """Test metrics of every model, the DNN first."""
        return {"dnn": self.test_metrics, **self.baseline_metrics}


def prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": float(v) for k, v in metrics.items()}


def log_test_scores(p_test: np.ndarray, y_test: np.ndarray) -> None:
    """The test split's calibrated probabilities of default and outcomes, as the run's artifact
    :data:`models.registered.TEST_SCORES_ARTIFACT`: ``loanrisk monitor`` measures the version's
    AUC on the test applicants a lending policy would lend to, like for like with the outcomes it
    sees (lent loans only)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(TEST_SCORES_ARTIFACT).name
        scores = {"probability_of_default": p_test, "defaulted": y_test.astype(np.int8)}
        pd.DataFrame(scores).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(TEST_SCORES_ARTIFACT).parent))


def evaluate(
    prepared: Prepared,
    fitted: Fitted,
    options: TrainOptions,
    run_id: str,
    say: Callable[[str], None],
) -> Evaluation:
    """Measure the fitted DNN and the baselines on the test rows at one operating threshold."""
    risk_model = fitted.risk_model
    y_validation, y_test = prepared.y("validation"), prepared.y("test")
    p_validation = risk_model.score_frame(prepared.rows("validation"))
    p_test = risk_model.score_frame(prepared.rows("test"))
    x_test = risk_model.preprocessor.transform(prepared.rows("test"))
    uncalibrated_test = sigmoid(risk_model.network.mean_logits(x_test))
    if options.threshold is None:
        threshold = ks_threshold(y_validation, p_validation)
        threshold_source = "largest KS gap on the validation split"
    else:
        threshold = float(options.threshold)
        threshold_source = "set by the user"
    test_metrics = classification_metrics(y_test, p_test, threshold)
    validation_metrics = classification_metrics(y_validation, p_validation, threshold)
    ece_uncalibrated = expected_calibration_error(y_test, uncalibrated_test)
    noise_floor = ece_noise_floor(p_test, seed=options.seed)
    mlflow.log_metrics(prefixed("test", test_metrics))
    mlflow.log_metrics(prefixed("validation", validation_metrics))
    mlflow.log_metrics(
        {
            "test_ece_uncalibrated": ece_uncalibrated,
            "test_ece_noise_floor": noise_floor,
            "operating_threshold": threshold,
        }
    )
    log_test_scores(p_test, y_test)
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
        mlflow.set_tags({"loanrisk.model_kind": "dnn", "loanrisk.parent": run_id})
        mlflow.log_params(
            {
                **prepared.config.to_params(),
                "seed": options.seed,
                "calibration": options.calibration,
            }
        )
        mlflow.log_metrics(prefixed("test", test_metrics))
        mlflow.log_metrics(prefixed("validation", validation_metrics))
        mlflow.log_metric("fit_seconds", fitted.seconds)
    baseline_metrics, baseline_probabilities = fit_baselines(prepared, threshold, options.seed, say)
    return Evaluation(
        p_validation=p_validation,
        p_test=p_test,
        uncalibrated_test=uncalibrated_test,
        threshold=threshold,
        threshold_source=threshold_source,
        test_metrics=test_metrics,
        validation_metrics=validation_metrics,
        ece_uncalibrated=ece_uncalibrated,
        ece_noise_floor=noise_floor,
        baseline_metrics=baseline_metrics,
        baseline_probabilities=baseline_probabilities,
    )


def fit_baselines(
    prepared: Prepared, threshold: float, seed: int, say: Callable[[str], None]
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Fit each baseline on the training split; log it as a nested run with the DNN's metric
    names; return test metrics and test probabilities per baseline."""
    metrics: dict[str, dict[str, float]] = {}
    probabilities: dict[str, np.ndarray] = {}
    train_rows, y_train = prepared.rows("train"), prepared.y("train")
    sample = baseline_sample(y_train, seed)
    if sample is not None:
        # Announced, never silent: a parameter and a tag on the run, and a line on the console.
        say(
            f"baselines fitted on a stratified sample of {len(sample):,} of {len(y_train):,} "
            f"training rows (seed {seed}); measured on all {len(prepared.split.test):,} test rows"
        )
        mlflow.log_param("baseline_train_rows", len(sample))
        mlflow.set_tag("loanrisk.baselines_sampled", "true")
        train_rows, y_train = train_rows.iloc[sample], y_train[sample]
    for name, fit in BASELINES.items():
        say(f"baseline {name}")
        with mlflow.start_run(run_name=name, nested=True):
            mlflow.set_tags({"loanrisk.model_kind": "baseline", "loanrisk.baseline": name})
            mlflow.log_params({**baseline_params(name), "seed": seed})
            started = time.perf_counter()
            if sample is not None:
                mlflow.log_param("train_rows", len(sample))
            model = fit(train_rows, y_train, prepared.contract, seed)
            fit_seconds = time.perf_counter() - started
            p_test = model.probability(prepared.rows("test"))
            p_val = model.probability(prepared.rows("validation"))
            metrics[name] = classification_metrics(prepared.y("test"), p_test, threshold)
            probabilities[name] = p_test
            mlflow.log_metrics(prefixed("test", metrics[name]))
            mlflow.log_metrics(
                prefixed("validation", classification_metrics(prepared.y("validation"), p_val))
            )
            mlflow.log_metric("fit_seconds", fit_seconds)
    return metrics, probabilities
