"""The DNN pipeline on given rows: preprocessing → seed ensemble → calibration.

Shared by ``loanrisk train`` (one split) and ``loanrisk benchmark`` (each cross-validation fold), so
the benchmark measures exactly what training ships.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.calibration import CalibrationMethod, fit_calibrator
from models.contract import FeatureContract
from models.network import NetworkConfig
from models.preprocessing import Preprocessor
from models.risk_model import RiskModel
from training.fit import EpochReporter, FitResult, MemberReporter, fit_network, release_memory
from training.reproducibility import seed_everything


@dataclass
class DnnFit:
    """A calibrated risk model and what produced it."""

    risk_model: RiskModel
    fit: FitResult
    config: NetworkConfig
    validation_logits: np.ndarray


def resolve_config(
    config: NetworkConfig | None, n_train: int, overrides: Mapping[str, Any] | None = None
) -> NetworkConfig:
    """The given configuration, or the default recipe for this many training rows with
    ``overrides`` applied."""
    if config is not None:
        return config
    return NetworkConfig.for_rows(n_train, **dict(overrides or {}))


def fit_dnn(
    features: pd.DataFrame,
    y: np.ndarray,
    train_rows: np.ndarray,
    validation_rows: np.ndarray,
    contract: FeatureContract,
    config: NetworkConfig | None = None,
    seed: int = 0,
    calibration: CalibrationMethod = "platt",
    report: EpochReporter | None = None,
    on_member: MemberReporter | None = None,
    log_to_mlflow: bool | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> DnnFit:
    """Fit preprocessing and networks on ``train_rows``; stop early and calibrate on
    ``validation_rows``. Row arguments are positions in ``features`` and ``y``; without a
    ``config`` the default recipe for the training rows is used, with ``overrides`` on top."""
    seed_everything(seed)
    config = resolve_config(config, len(train_rows), overrides)
    # The training rows are taken out of the frame once (a copy) and dropped once encoded; the
    # encoded matrices are float32 (Preprocessor.transform writes them column by column), the
    # dtype Keras trains in.
    train = features.iloc[train_rows]
    preprocessor = Preprocessor.fit(train, contract)
    x_train = preprocessor.transform(train)
    del train
    release_memory()
    x_val = preprocessor.transform(features.iloc[validation_rows])
    fitted = fit_network(
        x_train,
        y[train_rows],
        x_val,
        y[validation_rows],
        config,
        seed,
        report=report,
        on_member=on_member,
        log_to_mlflow=log_to_mlflow,
    )
    network = fitted.network
    validation_logits = network.mean_logits(x_val)
    calibrator = fit_calibrator(validation_logits, y[validation_rows], calibration)
    risk_model = RiskModel(contract, preprocessor, network, calibrator=calibrator)
    return DnnFit(
        risk_model=risk_model,
        fit=fitted,
        config=config,
        validation_logits=validation_logits,
    )
