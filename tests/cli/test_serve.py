"""``loanrisk up``: the environment of the MLflow UI server it starts."""

from cli.serve import mlflow_ui_env


def test_the_mlflow_ui_runs_without_its_job_runner_unless_the_operator_says() -> None:
    env = mlflow_ui_env({"PATH": "/bin", "MLFLOW_PORT": "5001"})
    assert env == {
        "PATH": "/bin",
        "MLFLOW_PORT": "5001",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    chosen = {"PATH": "/bin", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"}
    assert mlflow_ui_env(chosen) == chosen
