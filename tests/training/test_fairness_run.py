"""Fair-lending evidence end to end on a generated loan file where a protected attribute drives a
strong proxy input: the proxy is named first, ``--min-air`` holds the model back, and
``loanrisk lda`` finds the alternative without the proxy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from cli import app
from tests.training.fairness_data import write_proxy_loans
from training.data import load_dataset
from training.gate import TAG_DECISION, TAG_REASON
from training.lda import DEFAULT_AUC_TOLERANCE, search
from training.proxies import proxy_table
from training.stages.options import TrainOptions

pytestmark = pytest.mark.slow

# A small network trained long enough to pick the district up; the same recipe for `loanrisk
# train` (command-line overrides) and for the search (``network_overrides``), so both fit the same
# model on the same split.
OVERRIDES = {
    "hidden_units": (16,),
    "ensemble_size": 1,
    "epochs": 15,
    "early_stopping_patience": 0,
    "batch_size": 64,
    "learning_rate": 0.01,
}
TRAIN_ARGS = [
    "--hidden-units",
    "16",
    "--ensemble-size",
    "1",
    "--epochs",
    "15",
    "--patience",
    "0",
    "--batch-size",
    "64",
    "--learning-rate",
    "0.01",
]


@dataclass(frozen=True)
class HeldRun:
    data: Path
    output: str
    run_id: str
    test_auc: float
    threshold: float


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeldRun]:
    """``loanrisk train --min-air 0.95`` once on the generated file, in a module-wide store."""
    directory = tmp_path_factory.mktemp("proxy-loans")
    data = write_proxy_loans(directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{directory / 'mlflow.db'}")
        patch.setenv("LOANRISK_MODEL_NAME", "proxy-loans")
        patch.chdir(directory)
        command = ["train", "--data", str(data), "--experiment", "fair", "--min-air", "0.95"]
        result = CliRunner().invoke(app, [*command, *TRAIN_ARGS])
        assert result.exit_code == 0, result.output
        client = MlflowClient()
        version = client.get_model_version_by_alias("proxy-loans", "challenger")
        metrics = client.get_run(str(version.run_id)).data.metrics
        yield HeldRun(
            data=data,
            output=result.output,
            run_id=str(version.run_id),
            test_auc=metrics["test_roc_auc"],
            threshold=metrics["operating_threshold"],
        )


def test_the_proxy_is_named_first_and_flagged(tmp_path: Path) -> None:
    dataset = load_dataset(write_proxy_loans(tmp_path))
    table = proxy_table(
        dataset.frame, {f.name: f.kind for f in dataset.contract.features}, ["group"]
    )
    assert table["input"].iloc[0] == "district"
    assert table["flagged"].tolist() == [True, False, False, False]


def test_min_air_holds_the_model_back_with_the_reason_on_the_run(held: HeldRun) -> None:
    assert "(alias challenger)" in held.output
    assert "gate        held:" in held.output and "below --min-air 0.95" in held.output
    assert "  fairness    group = B: AIR " in held.output
    assert "proxies     1 flagged (AUC >= 0.65): district for group" in held.output
    client = MlflowClient()
    run = client.get_run(held.run_id)
    assert run.data.tags[TAG_DECISION] == "held"
    assert "fairness_air_min" in run.data.tags[TAG_REASON]
    assert "(group) is below --min-air 0.95" in run.data.tags[TAG_REASON]
    metrics = run.data.metrics
    assert metrics["fairness_air_min"] == metrics["fairness_air__group__B"] < 0.95
    assert metrics["fairness_air__group__A"] == 1.0
    assert metrics["fairness_smd__group__B"] > 0  # B is scored riskier
    assert metrics["fairness_proxy_auc_max"] >= 0.65 and metrics["fairness_proxies_flagged"] == 1
    assert run.data.params["min_air"] == "0.95" and run.data.params["air_screen"] == "0.8"


def test_the_card_and_the_artifacts_name_the_proxy(held: HeldRun, tmp_path: Path) -> None:
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=held.run_id, artifact_path="evaluation", dst_path=str(tmp_path)
        )
    )
    proxies = pd.read_csv(local / "proxies.csv")
    assert proxies["input"].iloc[0] == "district" and bool(proxies["flagged"].iloc[0])
    card = (local / "model_card.md").read_text()
    assert "| district | group |" in card and "**flagged**" in card
    assert "AIR 95% CI" in card and "Promotion gate on fairness: --min-air 0.95" in card
    assert "| group | A |" in card and "reference" in card


def test_lda_finds_the_alternative_without_the_proxy(
    held: HeldRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = search(
        TrainOptions(data=held.data, experiment="lda", network_overrides=dict(OVERRIDES))
    )
    table = result.table.set_index("alternative")
    base = table.loc["baseline"]
    # Same split, recipe, seed and fit path as the training run: the same model and threshold.
    assert base["test_roc_auc"] == pytest.approx(held.test_auc, abs=1e-9)
    assert base["threshold"] == pytest.approx(held.threshold, abs=1e-9)
    drop = table.loc["drop district"]
    assert drop["less_discriminatory"]
    assert drop["auc_change"] >= -DEFAULT_AUC_TOLERANCE
    assert drop["fairness_air_min"] > base["fairness_air_min"] + 0.1
    assert result.found == "drop district"
    assert result.conclusion.startswith("less discriminatory alternative found: drop district")
    assert (table["kind"] == "threshold").sum() >= 2

    client = MlflowClient()
    children = client.search_runs(
        [result.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert {run.info.run_name for run in children} == set(result.table["alternative"])
    for run in children:
        assert {"test_roc_auc", "fairness_air_min"} <= set(run.data.metrics)
    names = {Path(f.path).name for f in client.list_artifacts(result.run_id, "lda")}
    assert names == {"alternatives.csv", "alternatives.md", "frontier.png", "proxies.csv"}
    parent = client.get_run(result.run_id)
    assert parent.data.tags["loanrisk.lda"] == result.conclusion
    assert parent.data.metrics["lda_found"] == 1.0


def test_lda_command_prints_the_table_and_the_verdict(tmp_path: Path, mlflow_store: str) -> None:
    data = write_proxy_loans(tmp_path, rows=1000, seed=2)
    result = CliRunner().invoke(
        app, ["lda", "--data", str(data), "--experiment", "lda-cli", "--epochs", "1"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("alternative ") and "AIR min" in line for line in lines)
    assert sum(line.startswith("baseline ") for line in lines) == 1
    # The progress line "drop district" and the table's line for it, with its figures.
    table_rows = [line.split() for line in lines if len(line.split()) > 4]
    assert [" ".join(row[:2]) for row in table_rows if row[0] == "drop"] == ["drop district"]
    assert sum(line.startswith("threshold ") for line in lines) >= 2
    verdicts = [
        line
        for line in lines
        if line.startswith(("less discriminatory alternative found:", "no less discriminatory"))
    ]
    assert len(verdicts) == 1 and "baseline test AUC" in verdicts[0]


def test_lda_refuses_data_without_protected_columns(tmp_path: Path, mlflow_store: str) -> None:
    data = write_proxy_loans(tmp_path, rows=300)
    (tmp_path / "proxy_loans.schema.json").write_text(
        '{"target": "outcome", "positive_label": "bad", "drop": ["group"]}'
    )
    result = CliRunner().invoke(app, ["lda", "--data", str(data)])
    assert result.exit_code == 2
    assert "no protected columns declared" in result.output
