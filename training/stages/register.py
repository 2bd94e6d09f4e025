"""Stage 6, register: save the model directory, log it on the run as an MLflow pyfunc model,
register it as a new version and point the gate's alias (champion or challenger) at it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow

from models.mlflow_flavor import RISK_MODEL_ARTIFACT, log_risk_model
from models.risk_model import RiskModel
from training.gate import GateDecision, apply_decision
from training.registry import Registration, register
from training.stages.fit import Fitted
from training.stages.options import TrainOptions
from training.stages.prepare import Prepared


def register_version(
    prepared: Prepared,
    fitted: Fitted,
    risk_model: RiskModel,
    decision: GateDecision,
    options: TrainOptions,
    run_id: str,
) -> Registration:
    """Log ``risk_model`` (with the Keras network of ``fitted``) and register it under
    ``options.register_as``; the decision's tags go on the run and on the version."""
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / RISK_MODEL_ARTIFACT
        risk_model.save(model_dir, keras_model=fitted.network_fit.model)
        info = log_risk_model(model_dir, prepared.contract, prepared.rows("train"))
    registration = register(info.model_uri, options.register_as, decision.alias)
    apply_decision(registration.name, registration.version, run_id, decision)
    mlflow.set_tag("loanrisk.registered_version", registration.version)
    return registration
