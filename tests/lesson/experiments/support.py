"""Reading back what an experiment logged, and checking how a bad input is refused."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run


@dataclass
class Logged:
    """One experiment's parent run and its child runs, read back from the tracking store."""

    client: MlflowClient
    parent: Run
    children: dict[str, Run]

    def artifacts(self, run: Run) -> set[str]:
        return {a.path for a in self.client.list_artifacts(run.info.run_id)}

    def metric_names(self, run: Run) -> set[str]:
        return set(run.data.metrics)

    def steps(self, run: Run, metric: str) -> list[int]:
        return [m.step for m in self.client.get_metric_history(run.info.run_id, metric)]


def read_logged(experiment: str) -> Logged:
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"experiment {experiment} was not created"
    runs = client.search_runs([found.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, "expected exactly one parent run"
    parent = parents[0]
    children = {
        r.info.run_name: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert len(children) == len(runs) - 1, "every other run is a child of the parent"
    return Logged(client, parent, children)


def assert_one_line_error(result: object, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]


def assert_nothing_logged() -> None:
    """No run was logged: bad input is refused before the tracking store is even opened."""
    uri = os.environ["MLFLOW_TRACKING_URI"]
    assert uri.startswith("sqlite:///")
    database = Path(uri.removeprefix("sqlite:///"))
    if not database.exists():
        return
    client = MlflowClient()
    experiments = client.search_experiments()
    assert [r for e in experiments for r in client.search_runs([e.experiment_id])] == []
