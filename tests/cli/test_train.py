import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from cli import app
from tests.conftest import CREDIT_DATA, TrainedStore

LOANRISK = Path(sys.executable).with_name("loanrisk")


@pytest.mark.parametrize(
    ("content", "name", "extra", "reason"),
    [
        (
            "a,b\n1,2\n3,4\n",
            "no_target.csv",
            ["--target", "Status", "--positive-label", "bad"],
            "not in",
        ),
        (
            "Status,x\nbad,1\nbad,2\n",
            "one_class.csv",
            ["--target", "Status", "--positive-label", "bad"],
            "exactly two",
        ),
        (
            "Status,x\na,1\nb,2\nc,3\n",
            "three.csv",
            ["--target", "Status", "--positive-label", "a"],
            "exactly two",
        ),
        ("", "empty.csv", ["--target", "Status", "--positive-label", "bad"], "empty"),
        (
            "{}",
            "data.json",
            ["--target", "Status", "--positive-label", "bad"],
            "not CSV or Parquet",
        ),
    ],
)
def test_bad_data_exits_non_zero_with_one_line_and_registers_nothing(
    tmp_path: Path, mlflow_store: str, content: str, name: str, extra: list[str], reason: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = CliRunner().invoke(app, ["train", "--data", str(path), *extra])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0]
    assert MlflowClient().search_registered_models() == []


def test_missing_file_from_the_real_command(tmp_path: Path, mlflow_store: str) -> None:
    completed = subprocess.run(
        [str(LOANRISK), "train", "--data", str(tmp_path / "absent.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"error: data file {tmp_path / 'absent.csv'} does not exist"
    assert not (tmp_path / "mlflow.db").exists() or MlflowClient().search_registered_models() == []


def test_invalid_hyperparameter_is_refused(mlflow_store: str) -> None:
    result = CliRunner().invoke(app, ["train", "--hidden-units", "64,x"])
    assert result.exit_code == 2
    assert "comma-separated" in result.output + result.stderr


@pytest.mark.slow
def test_train_command_registers_champion_and_reports(tmp_path: Path, mlflow_store: str) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "--epochs", "2", "--experiment", "cli-test", "--seed", "1", "--force-promote"],
    )
    assert result.exit_code == 0, result.output
    assert "epoch   1/2" in result.output and "epoch   2/2" in result.output
    assert "loan-default version 1 (alias champion)" in result.output
    assert "test        ROC AUC" in result.output
    link = [line for line in result.output.splitlines() if line.strip().startswith("MLflow UI")]
    assert link and link[0].rstrip().endswith("/#/experiments/1/runs")
    client = MlflowClient()
    champion = client.get_model_version_by_alias("loan-default", "champion")
    assert str(champion.version) == "1"
    experiment = client.get_experiment_by_name("cli-test")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    skipped = CliRunner().invoke(app, ["train", "--if-no-champion"])
    assert skipped.exit_code == 0 and "not training" in skipped.output
    assert len(client.search_model_versions("name='loan-default'")) == 1


def test_run_records_parameters_data_hash_curves_and_test_metrics(
    use_trained_store: TrainedStore,
) -> None:
    client = MlflowClient()
    run = client.get_run(use_trained_store.result.run_id)
    params = run.data.params
    for key in (
        "hidden_units",
        "keep_probability",
        "dropout_rate",
        "l2",
        "learning_rate",
        "batch_size",
        "epochs",
        "seed",
        "data_sha256",
    ):
        assert key in params, key
    assert params["protected_columns"] == "Age,Marital"
    assert float(params["keep_probability"]) + float(params["dropout_rate"]) == pytest.approx(1.0)
    metrics = run.data.metrics
    for key in ("test_roc_auc", "test_log_loss", "test_brier", "rows_train", "rows_test"):
        assert key in metrics, key
    assert metrics["rows_total"] == 4454
    for curve in ("train_loss", "val_loss", "train_auc", "val_auc"):
        history = client.get_metric_history(run.info.run_id, curve)
        assert [m.step for m in history] == [1, 2, 3, 4], curve


def test_registered_model_has_signature_example_and_champion_alias(
    use_trained_store: TrainedStore,
) -> None:
    import mlflow

    info = mlflow.models.get_model_info("models:/loan-default@champion")
    inputs = {c.name for c in info.signature.inputs.inputs}
    assert inputs == {
        "Seniority",
        "Home",
        "Time",
        "Records",
        "Job",
        "Expenses",
        "Income",
        "Assets",
        "Debt",
        "Amount",
        "Price",
    }
    assert info.signature.outputs.input_names() == ["probability_of_default"]
    assert info.saved_input_example_info is not None


def test_schema_file_for_data_elsewhere_is_used(tmp_path: Path, mlflow_store: str) -> None:
    bad_schema = tmp_path / "schema.json"
    bad_schema.write_text('{"protected": ["NotAColumn"]}')
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(CREDIT_DATA),
            "--schema",
            str(bad_schema),
            "--target",
            "Status",
            "--positive-label",
            "bad",
        ],
    )
    assert result.exit_code == 2
    assert "NotAColumn" in result.stderr
