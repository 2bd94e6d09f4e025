"""``loanrisk experiment l2``: the weight-decay sweep, end to end."""

import inspect

import pytest

from tests.lesson.experiments.support import assert_nothing_logged, assert_one_line_error


@pytest.mark.slow
def test_one_child_per_coefficient_with_the_lessons_lambda(run_experiment):
    # Three of the six default values keep the test short; the defaults are checked below.
    _, logged = run_experiment("l2", "--values", "0,1e-4,0.1", experiment="l2-test")

    assert set(logged.children) == {"l2=0", "l2=0.0001", "l2=0.1"}
    names = [logged.metric_names(run) for run in logged.children.values()]
    assert all(n == names[0] for n in names)
    assert {"train_loss", "test_loss", "train_auc", "test_auc", "loss_gap", "auc_gap"} <= names[0]
    rows_train = int(logged.parent.data.params["rows_train"])
    for run in logged.children.values():
        params = run.data.params
        assert float(params["keep_probability"]) == 1.0, "L2 must be the only regulariser"
        # Keras's L2(c) is the lesson's lambda / (2n).
        assert float(params["lesson_lambda"]) == pytest.approx(2 * rows_train * float(params["l2"]))
        assert logged.steps(run, "test_loss") == [1, 2]
    assert {"train_test_gap_vs_l2.png", "learning_curves.png"} <= logged.artifacts(logged.parent)


def test_negative_coefficient_is_refused(invoke_cli):
    assert_one_line_error(invoke_cli("experiment", "l2", "--values", "0,-1e-3"), ">= 0")
    assert_nothing_logged()


def test_unreadable_data_file_is_refused(invoke_cli, tmp_path):
    path = tmp_path / "loans.txt"
    path.write_text("Status,x\n")
    assert_one_line_error(invoke_cli("experiment", "l2", "--data", str(path)), "not CSV or Parquet")


def test_command_defaults_sweep_the_documented_values():
    from cli import experiment as commands
    from lesson.experiments import dropout, l2

    def default(command, name):
        return inspect.signature(command).parameters[name].default

    assert commands._floats(default(commands.l2, "values"), "c") == l2.COEFFICIENTS
    assert commands._floats(default(commands.dropout, "values"), "p") == dropout.KEEP_PROBABILITIES
    assert dropout.KEEP_PROBABILITIES == (0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
