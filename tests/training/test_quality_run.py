"""What every training run logs for a model-risk reviewer, and how runs are gated."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from cli import app
from models.network import NetworkConfig
from models.registered import load_registered
from tests.conftest import TrainedStore
from tests.loan_data import write_loans
from training.gate import TAG_DECISION, TAG_FORCED, TAG_REASON
from training.train import TrainOptions, train

pytestmark = pytest.mark.slow

FIGURES = {
    "roc_curve.png",
    "precision_recall_curve.png",
    "reliability.png",
    "score_distribution.png",
    "learning_curves.png",
    "architecture.png",
    "decision_surface.png",
}
REVIEW_METRICS = {
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
}
TINY = NetworkConfig(hidden_units=(8,), epochs=3, ensemble_size=1, early_stopping_patience=0)


def artifact_names(run_id: str, path: str) -> set[str]:
    return {Path(f.path).name for f in MlflowClient().list_artifacts(run_id, path)}


def test_run_logs_figures_model_card_fairness_and_reproducibility(
    use_trained_store: TrainedStore, tmp_path: Path
) -> None:
    run_id = use_trained_store.result.run_id
    assert artifact_names(run_id, "plots") == FIGURES
    assert {
        "model_card.md",
        "fairness.csv",
        "proxies.csv",
        "proxies.md",
        "reproducibility.json",
    } <= artifact_names(run_id, "evaluation")
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="evaluation", dst_path=str(tmp_path)
        )
    )
    card = (local / "model_card.md").read_text()
    for text in ("credit_data.csv", "SHA-256", "Age, Marital", "Known limits", "Seniority"):
        assert text in card, text
    fairness = pd.read_csv(local / "fairness.csv")
    assert set(fairness["attribute"]) == {"Age", "Marital"}
    assert "25-34" in set(fairness["group"]) and "married" in set(fairness["group"])
    assert fairness.loc[fairness["attribute"] == "Age", "rows"].sum() == 891
    # Adverse impact with its interval, the screen and the proxies, in the card.
    for text in ("AIR 95% CI", "| Age | 25-34 |", "small group", "Screen (0.80):", "## Proxies"):
        assert text in card, text
    assert "Promotion gate on fairness: off" in card
    proxies = pd.read_csv(local / "proxies.csv")
    assert proxies["auc"].is_monotonic_decreasing and proxies["flagged"].any()
    assert set(proxies["attribute"]) == {"Age", "Marital"}
    strongest = proxies.iloc[0]
    assert f"| {strongest['input']} | {strongest['attribute']} |" in card

    run = MlflowClient().get_run(run_id)
    for key in (
        "git_commit",
        "version_tensorflow-cpu",
        "version_keras",
        "version_scikit-learn",
        "version_mlflow",
        "data_sha256",
    ):
        assert run.data.params.get(key), key
    for name in REVIEW_METRICS:
        assert f"test_{name}" in run.data.metrics, name
    assert "test_ece_noise_floor" in run.data.metrics
    metrics = run.data.metrics
    for name in (
        "fairness_air_min",
        "fairness_air_min__Age",
        "fairness_air_min__Marital",
        "fairness_air__Age__25-34",
        "fairness_smd__Age__25-34",
        "fairness_air__Marital__married",
        "fairness_small_groups",
        "fairness_proxy_auc_max",
        "fairness_proxies_flagged",
    ):
        assert name in metrics, name
    assert metrics["fairness_air_min"] == min(
        metrics["fairness_air_min__Age"], metrics["fairness_air_min__Marital"]
    )
    assert run.data.params["min_air"] == "off"


def test_the_summary_names_every_group_below_the_screen(use_trained_store: TrainedStore) -> None:
    result = use_trained_store.result
    run = MlflowClient().get_run(result.run_id)
    below = {
        key.removeprefix("fairness_air__")
        for key, value in run.data.metrics.items()
        if key.startswith("fairness_air__") and value < 0.80
    }
    lines = result.fairness_screen
    if not below:
        assert len(lines) == 1 and lines[0].startswith("every protected group passes")
        return
    assert len(lines) == len(below)
    for line in lines:
        attribute, rest = line.split(" = ", 1)
        assert attribute in {"Age", "Marital"} and ": AIR " in rest and " test rows" in rest
        if "small group" in line:
            assert "too few to judge" in line
    assert result.proxy_summary.split(" flagged")[0] == str(
        int(run.data.metrics["fairness_proxies_flagged"])
    )


def test_baselines_and_dnn_are_nested_runs_with_the_same_metric_names(
    use_trained_store: TrainedStore,
) -> None:
    parent = use_trained_store.result.run_id
    experiment = MlflowClient().get_run(parent).info.experiment_id
    children = MlflowClient().search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    by_name = {run.info.run_name: run for run in children}
    assert set(by_name) == {"dnn", "logreg", "lightgbm"}
    names = [{k for k in run.data.metrics if k.startswith("test_")} for run in by_name.values()]
    assert names[0] == names[1] == names[2]
    assert {f"test_{m}" for m in REVIEW_METRICS} <= names[0]


def test_registered_model_carries_its_calibrator_and_threshold(
    use_trained_store: TrainedStore,
) -> None:
    model = load_registered("loan-default", alias="champion").risk_model
    assert model.calibrator.method == "platt"
    assert len(model.network.members) == model.metadata["network"]["ensemble_size"]
    assert 0.0 < model.metadata["decision_threshold"] < 1.0
    assert {"logreg", "lightgbm"} == set(model.metadata["baseline_test_metrics"])
    assert "Age" not in model.contract.names and "Marital" not in model.contract.names


def test_same_seed_and_data_reproduce_the_metrics_and_the_gate_holds_no_better_model(
    tmp_path: Path, mlflow_store: str
) -> None:
    data = write_loans(tmp_path, rows=500, seed=7)
    options = TrainOptions(
        data=data, experiment="repro", network=TINY, seed=3, register_as="repro", force_promote=True
    )
    first = train(options)
    assert first.alias == "champion"
    second = train(
        TrainOptions(
            data=data,
            experiment="repro",
            network=TINY,
            seed=3,
            register_as="repro",
            gate_margin=0.01,
        )
    )
    assert second.test_metrics == first.test_metrics
    assert second.baseline_metrics == first.baseline_metrics
    # Same AUC as the champion, which a positive margin does not accept.
    assert second.alias == "challenger"
    tags = MlflowClient().get_run(second.run_id).data.tags
    assert tags[TAG_DECISION] == "held" and "plus margin 0.01" in tags[TAG_REASON]
    assert str(MlflowClient().get_model_version_by_alias("repro", "champion").version) == "1"
    assert str(MlflowClient().get_model_version_by_alias("repro", "challenger").version) == "2"


def test_force_promote_from_the_command_line_is_recorded(
    tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOANRISK_MODEL_NAME", "forced")
    data = write_loans(tmp_path, rows=400, seed=8)
    common = [
        "train",
        "--data",
        str(data),
        "--experiment",
        "forced",
        "--epochs",
        "2",
        "--ensemble-size",
        "1",
        "--hidden-units",
        "8",
    ]
    first = CliRunner().invoke(app, [*common, "--force-promote"])
    assert first.exit_code == 0, first.output
    held = CliRunner().invoke(app, [*common, "--gate-margin", "1"])
    assert held.exit_code == 0, held.output
    assert "(alias challenger)" in held.output and "gate        held:" in held.output
    forced = CliRunner().invoke(app, [*common, "--gate-margin", "1", "--force-promote"])
    assert forced.exit_code == 0, forced.output
    assert "version 3 (alias champion)" in forced.output
    client = MlflowClient()
    assert str(client.get_model_version_by_alias("forced", "champion").version) == "3"
    run = client.get_run(client.get_model_version("forced", "3").run_id)
    assert run.data.tags[TAG_FORCED] == "true" and run.data.tags[TAG_DECISION] == "forced"
    assert run.data.params["force_promote"] == "True"
    assert "below champion version 1" in run.data.tags[TAG_REASON]
