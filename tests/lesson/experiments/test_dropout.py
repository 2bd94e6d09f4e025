"""``loanrisk experiment dropout``: the keep-probability sweep, end to end."""

import pytest

from tests.lesson.experiments.support import assert_nothing_logged, assert_one_line_error

GAP_METRICS = {"loss_gap", "auc_gap", "min_test_loss", "min_test_loss_epoch"}
PER_EPOCH = {"objective", "train_loss", "test_loss", "train_auc", "test_auc"}


@pytest.mark.slow
def test_one_child_per_keep_probability_and_the_gap_chart(run_experiment):
    result, logged = run_experiment("dropout", experiment="dropout-test")

    assert list(sorted(logged.children)) == [
        f"keep_p={p}" for p in ("0.2", "0.3", "0.5", "0.7", "0.9", "1")
    ]
    names = [logged.metric_names(run) for run in logged.children.values()]
    assert all(n == names[0] for n in names)
    assert names[0] >= GAP_METRICS | PER_EPOCH
    for name, run in logged.children.items():
        params = run.data.params
        assert name == f"keep_p={float(params['keep_probability']):g}"
        assert float(params["keep_probability"]) + float(params["dropout_rate"]) == pytest.approx(1)
        assert float(params["l2"]) == 0.0, "dropout must be the only regulariser"
        assert logged.steps(run, "train_auc") == [1, 2]
        metrics = run.data.metrics
        assert metrics["loss_gap"] == pytest.approx(metrics["test_loss"] - metrics["train_loss"])
    assert {"train_test_gap_vs_keep_probability.png", "learning_curves.png"} <= logged.artifacts(
        logged.parent
    )
    assert logged.parent.data.params["values"] == "0.2,0.3,0.5,0.7,0.9,1"
    assert "[6/6] keep_p=1" in result.output


@pytest.mark.parametrize(
    ("values", "fragment"),
    [("0,0.5", "must lie in (0, 1]"), ("0.5,1.5", "must lie in (0, 1]"), ("a,b", "comma-sep")],
)
def test_bad_keep_probabilities_are_refused(invoke_cli, values, fragment):
    assert_one_line_error(invoke_cli("experiment", "dropout", "--values", values), fragment)
    assert_nothing_logged()


def test_bad_hidden_units_are_refused(invoke_cli):
    result = invoke_cli("experiment", "dropout", "--hidden-units", "64,x")
    assert_one_line_error(result, "hidden units")
