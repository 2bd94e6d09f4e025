"""Reading the newest back-test of a version from a real MLflow store."""

from pathlib import Path

import pytest

from service.backtests import BACKTEST_EXPERIMENT, latest_backtest


@pytest.mark.parametrize("name", ["loan-default", "o'brien's model", 'the "best" model'])
def test_the_newest_finished_run_of_the_version_is_read(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert latest_backtest(name, "3", "champion") is None  # no experiment yet
    experiment = mlflow.set_experiment(BACKTEST_EXPERIMENT)
    for auc, version in ((0.70, "3"), (0.75, "3"), (0.99, "4")):
        with mlflow.start_run(experiment_id=experiment.experiment_id):
            mlflow.set_tags({"model_name": name, "model_version": version, "status": "watch"})
            mlflow.set_tags({"status_discrimination": "watch", "status_stability": "n/a"})
            mlflow.log_metrics({"total_auc": auc, "total_psi_Income": 0.01, "window_auc": 0.5})
    found = latest_backtest(name, "3", "champion")
    assert found is not None
    assert found.figures == {"auc": 0.75, "psi_Income": 0.01}
    assert found.statuses == {"discrimination": "watch", "stability": "n/a", "overall": "watch"}
    assert latest_backtest(name, "5", "champion") is None
    mlflow.set_tracking_uri("")
