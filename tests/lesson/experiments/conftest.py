"""Fixtures for the lesson experiments: reading back what a run logged, and digit CSV files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from tests.lesson.experiments.support import Logged, read_logged


@pytest.fixture
def run_experiment(mlflow_store: str) -> Callable[..., tuple[object, Logged]]:
    """Invoke ``loanrisk experiment ...`` in-process; return the CLI result and what it logged."""

    def invoke(*args: str, experiment: str) -> tuple[object, Logged]:
        result = CliRunner().invoke(
            app, ["experiment", *args, "--quick", "--experiment", experiment]
        )
        assert result.exit_code == 0, result.output + (result.stderr or "")
        return result, read_logged(experiment)

    return invoke


@pytest.fixture
def invoke_cli(mlflow_store: str) -> Callable[..., object]:
    def invoke(*args: str) -> object:
        return CliRunner().invoke(app, list(args))

    return invoke


@pytest.fixture(scope="session")
def digits_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """scikit-learn's bundled 8x8 digits as MNIST-format frames: label, then 64 pixels 0-16."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(
        digits.data.astype(int), columns=[f"{row}x{col}" for row in range(8) for col in range(8)]
    )
    frame.insert(0, "label", digits.target)
    return frame.iloc[:1300].reset_index(drop=True), frame.iloc[1300:].reset_index(drop=True)


@pytest.fixture
def digits_csv(
    tmp_path: Path, digits_frames: tuple[pd.DataFrame, pd.DataFrame]
) -> tuple[Path, Path]:
    train, test = tmp_path / "digits_train.csv", tmp_path / "digits_test.csv"
    digits_frames[0].to_csv(train, index=False)
    digits_frames[1].to_csv(test, index=False)
    return train, test
