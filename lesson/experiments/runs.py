"""An experiment's MLflow runs: one parent per experiment, one nested child per variant."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import mlflow
from matplotlib.figure import Figure

from models.mlflow_flavor import use_tracking
from training.train import ensure_experiment

Say = Callable[[str], None]


@dataclass
class ExperimentResult:
    """What an experiment logged: where, and each child's summary (the same keys for all)."""

    kind: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    children: dict[str, dict[str, float]] = field(default_factory=dict)
    charts: list[str] = field(default_factory=list)

    def add_chart(self, figure: Figure, name: str) -> None:
        """Log a figure as an artifact of the parent run (which must be the active run)."""
        mlflow.log_figure(figure, name)
        self.charts.append(name)


def _tags(kind: str, **extra: str) -> dict[str, str]:
    return {"loanrisk.stage": "experiment", "loanrisk.experiment": kind, **extra}


@contextmanager
def parent_run(
    kind: str, experiment: str, params: Mapping[str, Any], description: str
) -> Iterator[ExperimentResult]:
    """Open the experiment's parent run; child runs opened inside it nest under it."""
    uri = use_tracking()
    experiment_id = ensure_experiment(experiment)
    with mlflow.start_run(run_name=kind) as run:
        # The note is what the MLflow UI shows as the run's description.
        mlflow.set_tags(_tags(kind, **{"mlflow.note.content": description}))
        mlflow.log_params(dict(params))
        yield ExperimentResult(kind, uri, experiment_id, run.info.run_id)


@contextmanager
def child_run(kind: str, variant: str, params: Mapping[str, Any]) -> Iterator[str]:
    """Open one variant's child run under the active parent run; yields its run id."""
    with mlflow.start_run(run_name=variant, nested=True) as run:
        mlflow.set_tags(_tags(kind, **{"loanrisk.variant": variant}))
        mlflow.log_params(dict(params))
        yield run.info.run_id
