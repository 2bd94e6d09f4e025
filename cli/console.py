"""What every ``loanrisk`` command prints the same way: errors, links to the MLflow UI, stdout."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout

import typer


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line reason on stderr and return the exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def runs_link(tracking_uri: str, experiment_id: str) -> str:
    """Where the experiment's training runs table opens in the MLflow UI."""
    if tracking_uri.startswith(("http://", "https://")):
        base = tracking_uri.rstrip("/")
    else:
        from models.settings import TrainingSettings

        base = f"http://127.0.0.1:{TrainingSettings().mlflow_port}"
    return f"{base}/#/experiments/{experiment_id}/runs"


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send anything written to stdout (by Python or by native libraries) to stderr meanwhile,
    so that ``--json`` output stays exactly one object."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:
        saved = None
    try:
        if saved is not None:
            os.dup2(2, 1)
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)
