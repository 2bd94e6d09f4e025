"""What a model-risk reviewer reads: feature influence, the architecture, and the model card."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.calibration import Calibrator
from models.network import NetworkConfig
from models.risk_model import RiskModel

CARD_TEMPLATE = "model_card.md.j2"
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
    # The fair-lending section: the screen's lines, the proxy table (markdown), the screen and
    # the gate's floor (None: off).
    screen_lines: list[str] = field(default_factory=list)
    proxy_table: str = ""
    air_screen: float = 0.80
    min_air: float | None = None


def model_card(inputs: CardInputs) -> str:
    """A short markdown model card: data, features, exclusions, metrics, fairness, limits.

    The prose is the template ``training/templates/model_card.md.j2``; this function gathers the
    numbers and the tables it shows.
    """
    model = inputs.risk_model
    rows = {part: inputs.rows.get(part, 0) for part in ("train", "validation", "test")}
    positive_rates = {part: inputs.positive_rates.get(part, 0.0) for part in ("train", "test")}
    test_positives = round(rows["test"] * positive_rates["test"])
    se = auc_standard_error(
        inputs.metrics["dnn"]["roc_auc"], test_positives, rows["test"] - test_positives
    )
    return _card_template().render(
        model_name=inputs.model_name,
        run_id=inputs.run_id,
        created=inputs.created,
        gate_outcome=inputs.gate_outcome,
        gate_alias=inputs.gate_alias,
        gate_reason=inputs.gate_reason,
        contract=model.contract,
        data_file=inputs.data_file,
        data_sha256=inputs.data_sha256,
        rows=rows,
        positive_rates=positive_rates,
        total_rows=sum(inputs.rows.values()),
        seed=inputs.seed,
        features_table=markdown_table(_features_frame(model, inputs.influence)),
        config=inputs.config,
        members=len(model.network.members),
        epochs_run=inputs.epochs_run,
        calibrator_text=_calibrator_text(model.calibrator),
        threshold=inputs.threshold,
        threshold_source=inputs.threshold_source,
        auc_standard_error=se,
        metrics=inputs.metrics,
        metrics_table=markdown_table(_metrics_frame(inputs.metrics)),
        ece_uncalibrated=inputs.ece_uncalibrated,
        ece_noise_floor=inputs.ece_noise_floor,
        fairness_table="" if inputs.fairness.empty else markdown_table(inputs.fairness, ".3f"),
        screen_lines=inputs.screen_lines,
        proxy_table=inputs.proxy_table,
        air_screen=inputs.air_screen,
        min_air=inputs.min_air,
        git=inputs.environment.get("git", {}),
        packages=inputs.environment.get("packages", {}),
        python=inputs.environment.get("python", "?"),
    )


def _features_frame(model: RiskModel, influence: pd.Series) -> pd.DataFrame:
    """Each input with its kind, its encoding and its influence, most influential first."""
    transforms = {t.name: t for t in model.preprocessor.numeric}
    categories = {t.name: t for t in model.preprocessor.categorical}
    lines = []
    for spec in model.contract.features:
        if spec.kind == "numeric":
            t = transforms[spec.name]
            how = ("log1p, " if t.log else "") + "standardised"
            how += ", missing → median + indicator" if t.missing_indicator else ""
        else:
            how = f"one-hot, {len(categories[spec.name].categories)} categories + unknown"
        lines.append((spec.name, spec.kind, how, influence.get(spec.name, float("nan"))))
    return pd.DataFrame(
        lines, columns=["feature", "kind", "encoding", "AUC drop when shuffled"]
    ).sort_values("AUC drop when shuffled", ascending=False)


def _metrics_frame(metrics: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """One row per metric of CARD_METRICS, one column per model."""
    rows = [[name, *(metrics[m].get(name, float("nan")) for m in metrics)] for name in CARD_METRICS]
    return pd.DataFrame(rows, columns=["test metric", *metrics])


def _calibrator_text(calibrator: Calibrator) -> str:
    """``method = platt, a = 0.9812, b = -0.0345``; isotonic gives its number of knots."""
    text = ", ".join(
        f"{k} = {v:.4f}" if isinstance(v, float) else f"{k} = {v}"
        for k, v in calibrator.to_dict().items()
        if k not in ("knots", "values")
    )
    if calibrator.method == "isotonic":
        text += f", {len(calibrator.knots)} knots"
    return text


@cache
def _card_template() -> jinja2.Template:
    # Built on first use, not at import. Markdown, not HTML: nothing is escaped. StrictUndefined
    # turns a misspelt name in the template into an error instead of an empty string.
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("training", "templates"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["fmt"] = format
    environment.filters["repr"] = repr
    return environment.get_template(CARD_TEMPLATE)
