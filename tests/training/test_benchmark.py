"""``loanrisk benchmark`` on a small generated dataset: JSON shape and shared folds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.loan_data import write_loans
from training.benchmark import MODEL_NAMES, fold_indices, run_benchmark
from training.data import DataError, load_dataset

LOANRISK = Path(sys.executable).with_name("loanrisk")
SUMMARY_KEYS = {"auc_mean", "auc_std", "brier_mean", "ece_mean", "fit_seconds"}
TINY = {"epochs": 3, "ensemble_size": 1}


@pytest.mark.slow
def test_every_model_is_scored_on_the_same_folds(tmp_path: Path) -> None:
    dataset = load_dataset(write_loans(tmp_path, rows=300, seed=1))
    messages: list[str] = []
    result = run_benchmark(
        dataset, folds=3, seed=4, network_overrides=TINY, progress=messages.append
    )
    assert set(result.scores) == set(MODEL_NAMES)
    folds = [[score.test_rows for score in result.scores[name]] for name in MODEL_NAMES]
    for other in folds[1:]:
        for mine, theirs in zip(folds[0], other, strict=True):
            np.testing.assert_array_equal(mine, theirs)
    # The test folds partition the rows.
    every = np.sort(np.concatenate(folds[0]))
    np.testing.assert_array_equal(every, np.arange(300))
    # Stratified: each fold's default rate is close to the overall one.
    for rows in folds[0]:
        assert abs(dataset.y[rows].mean() - dataset.y.mean()) < 0.02
    assert len(messages) == 3 * len(MODEL_NAMES)
    for name in MODEL_NAMES:
        assert set(result.summary(name)) == SUMMARY_KEYS
    # The data has a real signal, which the baselines find.
    assert result.summary("logreg")["auc_mean"] > 0.65


def test_folds_depend_only_on_the_seed() -> None:
    y = np.array([0] * 80 + [1] * 20)
    first = fold_indices(y, 5, seed=3)
    again = fold_indices(y, 5, seed=3)
    for (train_a, test_a), (train_b, test_b) in zip(first, again, strict=True):
        np.testing.assert_array_equal(test_a, test_b)
        np.testing.assert_array_equal(train_a, train_b)
    with pytest.raises(DataError, match="at least 5 rows of each class"):
        fold_indices(np.array([0] * 50 + [1] * 3), 5, seed=0)


@pytest.mark.slow
def test_json_flag_prints_exactly_one_object_on_stdout(tmp_path: Path) -> None:
    data = write_loans(tmp_path, rows=300, seed=2, name="unseen")
    # No schema next to this copy: everything is inferred from the data.
    (tmp_path / "unseen.schema.json").unlink()
    completed = subprocess.run(
        [
            str(LOANRISK),
            "benchmark",
            "--data",
            str(data),
            "--target",
            "outcome",
            "--positive-label",
            "bad",
            "--folds",
            "3",
            "--seed",
            "0",
            "--epochs",
            "3",
            "--ensemble-size",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("\n") == 1
    out = json.loads(completed.stdout)
    assert set(out) == {"dataset", "rows", "positive_rate", "folds", "models"}
    assert out["dataset"] == "unseen.csv" and out["rows"] == 300 and out["folds"] == 3
    assert 0 < out["positive_rate"] < 1
    assert set(out["models"]) == {"dnn", "logreg", "lightgbm"}
    for summary in out["models"].values():
        assert set(summary) == SUMMARY_KEYS
        assert all(isinstance(v, float) for v in summary.values())
    # Progress went to stderr, one line per model and fold.
    assert completed.stderr.count("fold ") >= 9


def test_benchmark_refuses_unusable_data_with_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    path = tmp_path / "tiny.csv"
    path.write_text("x,y\n1,a\n2,b\n3,a\n4,b\n")
    result = CliRunner().invoke(
        app, ["benchmark", "--data", str(path), "--target", "y", "--positive-label", "b", "--json"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip().startswith("error: ")
