"""Stage 5, document: the metadata the model carries, the figures, the model card, the fairness
and influence tables and the reproducibility record, logged as the run's ``plots/`` and
``evaluation/`` artifacts."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from models.mlflow_flavor import input_example
from models.risk_model import RiskModel
from training import plots
from training.fairness import CONFIDENCE
from training.proxies import proxy_markdown
from training.report import (
    CardInputs,
    architecture_layers,
    markdown_table,
    model_card,
    typical_row,
)
from training.stages.evaluate import Evaluation
from training.stages.fit import Fitted
from training.stages.options import TrainOptions
from training.stages.prepare import PARTS, Prepared
from training.stages.review import Review

# Training rows drawn on the decision surface: enough to see the classes, few enough to see the
# surface.
SURFACE_POINTS = 1500


def document(
    prepared: Prepared,
    fitted: Fitted,
    evaluation: Evaluation,
    reviewed: Review,
    options: TrainOptions,
    run_id: str,
) -> RiskModel:
    """Log the figures and the evaluation files; return the model with its metadata."""
    risk_model = replace(
        fitted.risk_model, metadata=model_metadata(prepared, fitted, evaluation, options, run_id)
    )
    card = model_card(
        CardInputs(
            model_name=options.register_as,
            run_id=run_id,
            data_file=prepared.dataset.path.name,
            data_sha256=prepared.dataset.sha256,
            rows=prepared.row_counts,
            positive_rates={part: float(prepared.y(part).mean()) for part in PARTS},
            risk_model=risk_model,
            config=prepared.config,
            seed=options.seed,
            epochs_run=[len(h.get("loss", [])) for h in fitted.network_fit.histories],
            threshold=evaluation.threshold,
            threshold_source=evaluation.threshold_source,
            metrics=evaluation.all_test_metrics,
            ece_uncalibrated=evaluation.ece_uncalibrated,
            ece_noise_floor=evaluation.ece_noise_floor,
            fairness=card_fairness(reviewed.fairness, options.air_screen),
            influence=reviewed.influence,
            gate_outcome=reviewed.decision.outcome,
            gate_alias=reviewed.decision.alias,
            gate_reason=reviewed.decision.reason,
            environment=prepared.environment,
            screen_lines=reviewed.screen,
            proxy_table=proxy_markdown(reviewed.proxies),
            air_screen=options.air_screen,
            min_air=options.min_air,
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        figures = root / "plots"
        figures.mkdir()
        notes = draw_figures(figures, prepared, fitted, evaluation, reviewed, options.seed)
        if notes:
            card += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
        mlflow.log_artifacts(str(figures), artifact_path="plots")
        files = root / "evaluation"
        files.mkdir()
        (files / "model_card.md").write_text(card)
        fairness = reviewed.fairness
        fairness.to_csv(files / "fairness.csv", index=False)
        (files / "fairness.md").write_text(
            markdown_table(fairness, ".3f") + "\n"
            if not fairness.empty
            else "No protected columns declared.\n"
        )
        reviewed.proxies.to_csv(files / "proxies.csv", index=False)
        (files / "proxies.md").write_text(proxy_markdown(reviewed.proxies) + "\n")
        reviewed.influence.rename_axis("feature").reset_index().to_csv(
            files / "feature_influence.csv", index=False
        )
        (files / "reproducibility.json").write_text(
            json.dumps(prepared.environment, indent=2) + "\n"
        )
        mlflow.log_artifacts(str(files), artifact_path="evaluation")
    return risk_model


def card_fairness(table: pd.DataFrame, screen: float) -> pd.DataFrame:
    """The fairness table as the model card shows it: one line per group with its rows, rates,
    AIR and interval (text, two decimals), SMD, and a note (reference, below the screen, small).
    Empty when ``table`` is."""
    if table.empty:
        return table
    lines = []
    for row in table.itertuples(index=False):
        notes = []
        if row.group == row.reference_group:
            notes.append("reference")
        elif np.isfinite(row.air) and row.air < screen:
            notes.append(f"**below {screen:.2f}**")
        if row.small_group:
            notes.append("small group")
        interval = (
            f"{row.air_ci_low:.2f}-{row.air_ci_high:.2f}"
            if np.isfinite(row.air_ci_low) and np.isfinite(row.air_ci_high)
            else ""
        )
        lines.append(
            (
                row.attribute,
                row.group,
                int(row.rows),
                f"{row.observed_default_rate:.3f}",
                f"{row.mean_predicted_probability:.3f}",
                f"{row.approval_rate:.3f}",
                f"{row.air:.2f}" if np.isfinite(row.air) else "",
                interval,
                f"{row.smd:+.2f}" if np.isfinite(row.smd) else "",
                ", ".join(notes),
            )
        )
    return pd.DataFrame(
        lines,
        columns=[
            "attribute",
            "group",
            "test rows",
            "observed default rate",
            "mean predicted probability",
            "approval rate",
            "AIR",
            f"AIR {CONFIDENCE:.0%} CI",
            "SMD",
            "note",
        ],
    )


def model_metadata(
    prepared: Prepared,
    fitted: Fitted,
    evaluation: Evaluation,
    options: TrainOptions,
    run_id: str,
) -> dict[str, Any]:
    """``metadata.json`` of the model: its run, data, recipe, calibration, threshold, metrics, and
    a synthetic example applicant (typical values of the training rows, never a row)."""
    example = input_example(prepared.rows("train"), prepared.contract)
    return {
        "run_id": run_id,
        "data_file": prepared.dataset.path.name,
        "data_sha256": prepared.dataset.sha256,
        "seed": options.seed,
        "network": prepared.config.to_params(),
        "calibration": fitted.risk_model.calibrator.to_dict(),
        "decision_threshold": evaluation.threshold,
        "threshold_source": evaluation.threshold_source,
        "test_metrics": evaluation.test_metrics,
        "validation_metrics": evaluation.validation_metrics,
        "baseline_test_metrics": evaluation.baseline_metrics,
        "rows": prepared.row_counts,
        "git_commit": prepared.git_commit,
        "example_applicant": {
            key: (value.item() if hasattr(value, "item") else value)
            for key, value in example.iloc[0].to_dict().items()
        },
    }


def draw_figures(
    directory: Path,
    prepared: Prepared,
    fitted: Fitted,
    evaluation: Evaluation,
    reviewed: Review,
    seed: int,
) -> list[str]:
    """Draw every figure into ``directory`` and return notes on any that could not be drawn."""
    risk_model = fitted.risk_model
    y_test = prepared.y("test")
    curves = {name: (y_test, p) for name, p in evaluation.test_probabilities.items()}
    plots.roc_plot(curves, directory / "roc_curve.png")
    plots.precision_recall_plot(curves, directory / "precision_recall_curve.png")
    plots.reliability_plot(
        y_test,
        {
            "DNN calibrated": evaluation.p_test,
            "DNN before calibration": evaluation.uncalibrated_test,
        },
        directory / "reliability.png",
    )
    plots.score_distribution_plot(
        y_test, evaluation.p_test, directory / "score_distribution.png", evaluation.threshold
    )
    plots.learning_curves_plot(fitted.network_fit.histories, directory / "learning_curves.png")
    members = len(risk_model.network.members)
    plots.architecture_plot(
        architecture_layers(risk_model, prepared.config),
        directory / "architecture.png",
        title=f"Network architecture ({members} seed ensemble)"
        if members > 1
        else "Network architecture",
    )
    notes = []
    numeric = [f.name for f in risk_model.contract.numeric]
    ranked = [name for name in reviewed.influence.index if name in numeric]
    if len(ranked) >= 2:
        x_name, y_name = ranked[0], ranked[1]
        train_rows = prepared.rows("train")
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
            prepared.y("train")[chosen],
            directory / "decision_surface.png",
            log_axes=(logs[x_name], logs[y_name]),
        )
    else:
        notes.append("decision surface not drawn: fewer than two numeric features")
    return notes
