"""``loanrisk experiment mnist``: the lesson-end project on scikit-learn's 8x8 digits."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lesson.experiments.data import ExperimentError
from lesson.experiments.mnist import read_digits
from tests.lesson.experiments.support import assert_nothing_logged, assert_one_line_error
from training.data import DataError

LOANRISK = Path(sys.executable).with_name("loanrisk")


@pytest.mark.slow
def test_dropout_and_plain_networks_under_one_parent_repeatably(run_experiment, digits_csv):
    train, test = digits_csv
    result, logged = run_experiment(
        "mnist", "--train", str(train), "--test", str(test), experiment="mnist-test"
    )

    assert set(logged.children) == {"no_dropout", "keep_p=0.7"}
    names = [logged.metric_names(run) for run in logged.children.values()]
    assert names[0] == names[1]
    assert names[0] >= {"train_accuracy", "test_accuracy", "train_loss", "test_loss"} | {
        "accuracy_gap",
        "loss_gap",
        "objective",
    }
    keep = {
        name: float(run.data.params["keep_probability"]) for name, run in logged.children.items()
    }
    assert keep == {"no_dropout": 1.0, "keep_p=0.7": 0.7}
    for run in logged.children.values():
        metrics = run.data.metrics
        assert logged.steps(run, "test_accuracy") == [1, 2]
        assert metrics["accuracy_gap"] == pytest.approx(
            metrics["train_accuracy"] - metrics["test_accuracy"]
        )
        assert metrics["test_accuracy"] > 0.5, "two epochs already learn most digits"
    params = logged.parent.data.params
    assert (params["n_pixels"], params["n_classes"], params["pixel_scale"]) == ("64", "10", "16.0")
    assert (params["rows_train"], params["rows_test"]) == ("1300", "497")
    assert {"learning_curves.png", "accuracy_gap.png"} <= logged.artifacts(logged.parent)
    assert "[2/2] keep_p=0.7" in result.output

    # Same seed, same numbers: initial weights, shuffling and dropout masks are all seeded.
    _, again = run_experiment(
        "mnist", "--train", str(train), "--test", str(test), experiment="mnist-again"
    )
    for name, run in logged.children.items():
        first = [m.value for m in logged.client.get_metric_history(run.info.run_id, "objective")]
        repeat_id = again.children[name].info.run_id
        second = [m.value for m in again.client.get_metric_history(repeat_id, "objective")]
        assert second == pytest.approx(first, rel=1e-6), name


def test_file_without_a_header_reads_label_first(tmp_path, digits_frames):
    path = tmp_path / "plain.csv"
    digits_frames[1].head(20).to_csv(path, index=False, header=False)
    digits = read_digits(path)
    assert digits.pixels.shape == (20, 64)
    np.testing.assert_array_equal(digits.labels, digits_frames[1]["label"].head(20))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("pixel0,label\n0,1\n", "first column must be 'label'"),
        ("label\n1\n2\n", "no pixel columns"),
        ("label,p1,p2\n1,0,dark\n", "column 'p2' is not numeric"),
        ("label,p1,p2\n1,0,-3\n", "negative pixel"),
        ("label,p1,p2\n1.5,0,3\n", "non-negative integers"),
        ("label,p1,p2\n1,0,\n", "missing"),
    ],
)
def test_wrong_csv_formats_are_refused_with_a_reason(tmp_path, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ExperimentError, match=None) as caught:
        read_digits(path)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_empty_and_missing_files_are_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_digits(empty)
    with pytest.raises(DataError, match="does not exist"):
        read_digits(tmp_path / "absent.csv")


def test_train_and_test_must_have_the_same_pixel_count(invoke_cli, digits_csv, tmp_path):
    train, _ = digits_csv
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("label,p1,p2\n1,0,3\n2,4,0\n")
    result = invoke_cli("experiment", "mnist", "--train", str(train), "--test", str(narrow))
    assert_one_line_error(result, "has 64 pixel columns but narrow.csv has 2")
    assert_nothing_logged()


def test_keep_probability_of_one_leaves_nothing_to_compare(invoke_cli, digits_csv):
    train, test = digits_csv
    result = invoke_cli(
        "experiment", "mnist", "--train", str(train), "--test", str(test), "--keep-probability", "1"
    )
    assert_one_line_error(result, "keep probability must lie in (0, 1)")


def test_missing_file_from_the_real_command(tmp_path, mlflow_store):
    absent = tmp_path / "mnist_train.csv"
    completed = subprocess.run(
        [str(LOANRISK), "experiment", "mnist", "--train", str(absent), "--test", str(absent)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"error: data file {absent} does not exist"
