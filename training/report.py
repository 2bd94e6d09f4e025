"""What a model-risk reviewer reads: feature influence, the architecture, and the model card."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.calibration import Calibrator
from models.network import NetworkConfig
from models.risk_model import RiskModel

# Metrics shown in the model card's comparison table, in this order.
CARD_METRICS = (
    "roc_auc",
    "gini",
    "ks",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "precision",
    "recall",
    "approval_rate",
    "bad_rate_approved",
)


def permutation_influence(
    risk_model: RiskModel, features: pd.DataFrame, y: np.ndarray, seed: int = 0
) -> pd.Series:
    """Drop in ROC AUC when one raw feature's values are shuffled across rows, per feature.

    Computed on held-out rows through the whole scoring path (preprocessing included), so a
    categorical feature counts once however many one-hot columns it has.
    """
    rng = np.random.default_rng(seed)
    base = roc_auc_score(y, risk_model.score_frame(features))
    drops = {}
    for name in risk_model.contract.names:
        shuffled = features.copy()
        shuffled[name] = features[name].to_numpy()[rng.permutation(len(features))]
        drops[name] = base - roc_auc_score(y, risk_model.score_frame(shuffled))
    return pd.Series(drops, name="auc_drop").sort_values(ascending=False)


def typical_row(features: pd.DataFrame, risk_model: RiskModel) -> pd.Series:
    """Median of each numeric feature and most frequent value of each categorical one."""
    values: dict[str, Any] = {}
    for spec in risk_model.contract.features:
        column = features[spec.name]
        if spec.kind == "numeric":
            values[spec.name] = float(pd.to_numeric(column, errors="coerce").median())
        else:
            mode = column.dropna().mode()
            values[spec.name] = mode.iloc[0] if len(mode) else None
    return pd.Series(values)


def architecture_layers(risk_model: RiskModel, config: NetworkConfig) -> list[tuple[str, int, str]]:
    """(name, units, note) per layer for the architecture figure."""
    preprocessor = risk_model.preprocessor
    layers = [
        (
            "inputs",
            preprocessor.width,
            f"{len(risk_model.contract.features)} raw fields:\n"
            f"{len(preprocessor.numeric)} numeric, {len(preprocessor.categorical)} one-hot",
        )
    ]
    for index, units in enumerate(config.hidden_units, start=1):
        layers.append(
            (
                f"hidden {index}",
                int(units),
                f"ReLU, L2 {config.l2:g}\nkeep p = {config.keep_probability:g}",
            )
        )
    members = len(risk_model.network.members)
    ensemble = f"\nmean logit of {members} seeds" if members > 1 else ""
    layers.append(("output", 1, f"logit → {calibration_label(risk_model.calibrator)}{ensemble}"))
    return layers


def calibration_label(calibrator: Calibrator) -> str:
    if calibrator.method == "platt":
        return "Platt-calibrated P(default)"
    if calibrator.method == "isotonic":
        return "isotonic-calibrated P(default)"
    return "sigmoid P(default)"


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC measured on this many rows."""
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1.0 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / max(positives * negatives, 1)
    return float(np.sqrt(max(variance, 0.0)))


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """A small DataFrame as a GitHub-flavoured markdown table (no extra dependency)."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float | np.floating):
                cells.append(format(float(value), floatfmt) if np.isfinite(value) else "")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class CardInputs:
    """Everything the model card states; gathered by the training pipeline."""

    model_name: str
    run_id: str
    data_file: str
    data_sha256: str
    rows: Mapping[str, int]
    positive_rates: Mapping[str, float]
    risk_model: RiskModel
    config: NetworkConfig
    seed: int
    epochs_run: list[int]
    threshold: float
    threshold_source: str
    metrics: Mapping[str, Mapping[str, float]]
    ece_uncalibrated: float
    ece_noise_floor: float
    fairness: pd.DataFrame
    influence: pd.Series
    gate_outcome: str
    gate_alias: str
    gate_reason: str
    environment: Mapping[str, Any]
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


def model_card(inputs: CardInputs) -> str:
    """A short markdown model card: data, features, exclusions, metrics, fairness, limits."""
    model = inputs.risk_model
    contract = model.contract
    test_rows = inputs.rows.get("test", 0)
    test_positives = round(test_rows * inputs.positive_rates.get("test", 0.0))
    dnn = inputs.metrics["dnn"]
    se = auc_standard_error(dnn["roc_auc"], test_positives, test_rows - test_positives)
    transforms = {t.name: t for t in model.preprocessor.numeric}
    categories = {t.name: t for t in model.preprocessor.categorical}
    feature_lines = []
    for spec in contract.features:
        if spec.kind == "numeric":
            t = transforms[spec.name]
            how = ("log1p, " if t.log else "") + "standardised"
            how += ", missing → median + indicator" if t.missing_indicator else ""
        else:
            c = categories[spec.name]
            how = f"one-hot, {len(c.categories)} categories + unknown"
        influence = inputs.influence.get(spec.name, float("nan"))
        feature_lines.append((spec.name, spec.kind, how, influence))
    features_table = pd.DataFrame(
        feature_lines, columns=["feature", "kind", "encoding", "AUC drop when shuffled"]
    ).sort_values("AUC drop when shuffled", ascending=False)
    metric_rows = []
    for name in CARD_METRICS:
        metric_rows.append(
            [name, *(inputs.metrics[m].get(name, float("nan")) for m in inputs.metrics)]
        )
    metrics_table = pd.DataFrame(metric_rows, columns=["test metric", *inputs.metrics])
    calibrator = model.calibrator.to_dict()
    calibrator_text = ", ".join(
        f"{k} = {v:.4f}" if isinstance(v, float) else f"{k} = {v}"
        for k, v in calibrator.items()
        if k not in ("knots", "values")
    )
    if model.calibrator.method == "isotonic":
        calibrator_text += f", {len(model.calibrator.knots)} knots"
    git = inputs.environment.get("git", {})
    packages = inputs.environment.get("packages", {})
    protected = ", ".join(contract.protected) or "none declared"
    dropped = ", ".join(contract.dropped) or "none"
    fairness = (
        markdown_table(inputs.fairness, ".3f")
        if not inputs.fairness.empty
        else "No protected columns are declared for this data, so there is no group table. "
        "Declare them under `protected` in the schema file."
    )
    members = len(model.network.members)
    epochs = ", ".join(str(e) for e in inputs.epochs_run)
    lines = [
        f"# Model card: {inputs.model_name}",
        "",
        f"Run `{inputs.run_id}`, {inputs.created:%Y-%m-%d %H:%M} UTC. "
        f"Gate: **{inputs.gate_outcome}**, alias `{inputs.gate_alias}` — {inputs.gate_reason}.",
        "",
        "## Purpose",
        "",
        "Estimates the probability that a loan applicant defaults "
        f"(`{contract.target} == {contract.positive_label!r}`), from the application fields "
        "below, to support — not replace — a credit decision.",
        "",
        "## Data",
        "",
        f"- File `{inputs.data_file}`, SHA-256 `{inputs.data_sha256}`.",
        f"- Rows: {inputs.rows.get('train', 0)} train / {inputs.rows.get('validation', 0)} "
        f"validation / {test_rows} test (stratified, seed {inputs.seed}); default rate "
        f"{inputs.positive_rates.get('train', 0.0):.3f} in train, "
        f"{inputs.positive_rates.get('test', 0.0):.3f} in test.",
        f"- Protected columns, excluded from the inputs and used only for the fairness table: "
        f"{protected}.",
        f"- Other columns dropped: {dropped}.",
        "",
        "## Features used",
        "",
        markdown_table(features_table),
        "",
        "## Model",
        "",
        f"- Dense network {'-'.join(str(u) for u in inputs.config.hidden_units)} (ReLU), dropout "
        f"keep probability {inputs.config.keep_probability:g}, L2 {inputs.config.l2:g}, Adam "
        f"{inputs.config.learning_rate:g}, batch {inputs.config.batch_size}; "
        f"{members} seed{'s' if members > 1 else ''} averaged on the logit; early stopping on "
        f"validation cross-entropy (epochs run: {epochs}).",
        f"- Calibration fitted on the validation split: {calibrator_text}.",
        f"- Operating threshold {inputs.threshold:.4f} ({inputs.threshold_source}): applicants "
        "at or above it are declined.",
        "",
        "## Test metrics",
        "",
        "The DNN against the baselines, all fitted on the same training rows and measured on the "
        f"same {test_rows} test rows. The DNN's AUC carries a standard error of about {se:.3f} "
        "(Hanley-McNeil) at this sample size.",
        "",
        markdown_table(metrics_table),
        "",
        f"Calibration: ECE {dnn['ece']:.4f} after calibration, {inputs.ece_uncalibrated:.4f} "
        f"before. A perfectly calibrated model would show an ECE of about "
        f"{inputs.ece_noise_floor:.4f} on this many rows from sampling noise alone (10 "
        "equal-frequency bins).",
        "",
        "## Outcomes by protected group (test split)",
        "",
        fairness,
        "",
        "`approval_ratio_to_highest` below 0.8 (the four-fifths screen) calls for review; small "
        "groups are noisy, read them with their row counts.",
        "",
        "## Known limits",
        "",
        f"- Trained and tested on {sum(inputs.rows.values())} rows of one file: the metrics "
        "describe that population and period only; the model has not been validated out of time "
        "or on another lender's applicants.",
        '- Categories not seen in training are scored as an "unknown" category; numeric '
        "values beyond 10 standard deviations of the training data are clipped.",
        "- Excluding protected columns does not prevent other features from acting as proxies "
        "for them; review the group table above and features such as geography.",
        "- Probabilities are calibrated to the default rate of the training data; a population "
        "with a different default rate needs recalibration.",
        "",
        "## Reproducibility",
        "",
        f"- Code commit `{git.get('commit', 'unknown')}`"
        + (" (uncommitted changes present)" if git.get("dirty") else "")
        + f"; seed {inputs.seed}; TensorFlow op determinism on.",
        "- "
        + ", ".join(f"{name} {version}" for name, version in sorted(packages.items()))
        + f"; Python {inputs.environment.get('python', '?')}.",
        "",
    ]
    return "\n".join(lines)
