"""``loanrisk experiment backprop``: the NumPy backward pass beside Keras, end to end."""

import pytest

from tests.lesson.experiments.support import assert_nothing_logged, assert_one_line_error


@pytest.mark.slow
def test_numpy_and_keras_curves_coincide(run_experiment):
    result, logged = run_experiment("backprop", experiment="backprop-test")

    assert set(logged.children) == {"numpy_backprop", "keras_sgd"}
    numpy_run, keras_run = logged.children["numpy_backprop"], logged.children["keras_sgd"]
    assert logged.metric_names(numpy_run) == logged.metric_names(keras_run)
    assert {"objective", "train_loss", "test_loss", "train_auc", "test_auc"} <= (
        logged.metric_names(numpy_run)
    )
    histories = {
        name: [
            m.value
            for m in sorted(
                logged.client.get_metric_history(run.info.run_id, "objective"),
                key=lambda m: m.step,
            )
        ]
        for name, run in logged.children.items()
    }
    assert len(histories["numpy_backprop"]) == 3
    assert histories["numpy_backprop"] == pytest.approx(histories["keras_sgd"], abs=1e-5)
    assert histories["numpy_backprop"][-1] < histories["numpy_backprop"][0], "the loss descends"
    assert logged.parent.data.metrics["max_abs_objective_difference"] < 1e-5
    assert logged.parent.data.metrics["max_abs_weight_difference"] < 1e-4
    assert "loss_curves.png" in logged.artifacts(logged.parent)
    assert "[2/2] keras_sgd" in result.output


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [("--learning-rate", "0", "learning rate"), ("--hidden-units", "0", "hidden units")],
)
def test_bad_settings_are_refused(invoke_cli, option, value, fragment):
    assert_one_line_error(invoke_cli("experiment", "backprop", option, value), fragment)
    assert_nothing_logged()
