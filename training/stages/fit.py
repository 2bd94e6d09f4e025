"""Stage 2, fit: preprocessing, the network (or seed ensemble) and its calibrator, on the training
rows with early stopping and calibration on the validation rows; then the training population's
profile (explanation baseline, drift bins), which travels with the model."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import mlflow

from models.reference import TrainingReference
from models.risk_model import RiskModel
from training.fit import EpochReporter, FitResult, MemberReporter
from training.pipeline import DnnFit, fit_dnn
from training.stages.options import TrainOptions
from training.stages.prepare import Prepared


@dataclass(frozen=True)
class Fitted:
    """The calibrated model with its training reference, the Keras network(s) behind it, and the
    wall-clock seconds the fit took."""

    risk_model: RiskModel
    network_fit: FitResult
    seconds: float


def fit_prepared(
    prepared: Prepared,
    options: TrainOptions,
    report: EpochReporter | None = None,
    on_member: MemberReporter | None = None,
    log_to_mlflow: bool | None = None,
) -> DnnFit:
    """:func:`training.pipeline.fit_dnn` on the prepared split with the run's recipe, seed and
    calibration: what ``loanrisk train`` fits, and what ``loanrisk lda`` fits again for each
    alternative."""
    return fit_dnn(
        prepared.dataset.features,
        prepared.dataset.y,
        prepared.split.train,
        prepared.split.validation,
        prepared.contract,
        prepared.config,
        options.seed,
        calibration=options.calibration,
        report=report,
        on_member=on_member,
        log_to_mlflow=log_to_mlflow,
    )


def fit(
    prepared: Prepared,
    options: TrainOptions,
    report: EpochReporter | None = None,
    on_member: MemberReporter | None = None,
) -> Fitted:
    """Fit the DNN pipeline on the split; per-epoch curves go to the active run as they come."""
    started = time.perf_counter()
    dnn = fit_prepared(prepared, options, report=report, on_member=on_member)
    seconds = time.perf_counter() - started
    train_rows = prepared.rows("train")
    calibrated = dnn.risk_model
    reference = TrainingReference.fit(
        train_rows, prepared.contract, calibrated.preprocessor, calibrated.score_frame(train_rows)
    )
    risk_model = replace(calibrated, reference=reference)
    mlflow.log_param("n_features_encoded", risk_model.preprocessor.width)
    mlflow.log_metrics(
        {
            "best_epoch": dnn.fit.best_epoch,
            "epochs_run": dnn.fit.epochs_run,
            "fit_seconds": seconds,
        }
    )
    return Fitted(risk_model=risk_model, network_fit=dnn.fit, seconds=seconds)
