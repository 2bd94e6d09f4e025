"""``loanrisk experiment losses``: cross-entropy against MSE and MAE, end to end."""

import pytest

from tests.lesson.experiments.support import assert_nothing_logged, assert_one_line_error

LOSSES = {"binary_cross_entropy", "mean_squared_error", "mean_absolute_error"}
SUMMARY = {"test_roc_auc", "test_log_loss", "test_brier", "test_ece", "test_confidently_wrong"}
PER_EPOCH = {"objective", "train_loss", "test_loss", "train_auc", "test_auc"}


@pytest.mark.slow
def test_parent_and_three_children_with_the_same_metrics_and_charts(run_experiment):
    result, logged = run_experiment("losses", "--seed", "3", experiment="losses-test")

    assert set(logged.children) == LOSSES
    names = [logged.metric_names(run) for run in logged.children.values()]
    assert all(n == names[0] for n in names), "the compare view needs identical metric names"
    assert names[0] >= SUMMARY | PER_EPOCH
    for loss, run in logged.children.items():
        assert run.data.params["loss"] == loss
        assert run.data.params["seed"] == "3"
        assert logged.steps(run, "test_loss") == [1, 2]
        assert 0.0 <= run.data.metrics["test_ece"] <= 1.0
        assert 0.0 <= run.data.metrics["test_confidently_wrong"] <= 1.0
        assert 0.0 <= run.data.metrics["test_roc_auc"] <= 1.0
        # The final epoch's test loss is the summary log loss (same rows, same clipping).
        assert run.data.metrics["test_loss"] == pytest.approx(
            run.data.metrics["test_log_loss"], abs=1e-6
        )
    assert {"loss_comparison.png", "reliability.png", "learning_curves.png"} <= logged.artifacts(
        logged.parent
    )
    assert logged.parent.data.tags["loanrisk.experiment"] == "losses"
    assert "cross-entropy" in logged.parent.data.tags["mlflow.note.content"]
    assert logged.parent.data.params["data_file"] == "credit_data.csv"

    out = result.output
    assert "[1/3] binary_cross_entropy" in out and "[3/3] mean_absolute_error" in out
    assert "epoch   2/2" in out
    assert out.rstrip().endswith(f"/runs/{logged.parent.info.run_id}")


def test_missing_data_file_is_one_line_and_logs_nothing(invoke_cli, tmp_path):
    result = invoke_cli("experiment", "losses", "--quick", "--data", str(tmp_path / "none.csv"))
    assert_one_line_error(result, "does not exist")
    assert_nothing_logged()


def test_file_without_the_target_column_is_refused(invoke_cli, tmp_path):
    path = tmp_path / "loans.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    result = invoke_cli(
        "experiment", "losses", "--data", str(path), "--target", "Status", "--positive-label", "bad"
    )
    assert_one_line_error(result, "'Status' is not in loans.csv")


def test_zero_epochs_is_refused(invoke_cli):
    assert_one_line_error(invoke_cli("experiment", "losses", "--epochs", "0"), "epochs must be")
