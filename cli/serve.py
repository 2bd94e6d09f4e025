"""``loanrisk serve`` and ``loanrisk up``: the HTTP service, alone or with training and the MLflow
UI around it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Annotated

import typer

# The MLflow UI (its own server process, one worker) answers /health within a few seconds.
UI_START_TIMEOUT_S = 60.0


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (env LOANRISK_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env LOANRISK_PORT)")] = None,
) -> None:
    """Serve the registry's champion over HTTP."""
    import uvicorn

    from service.config import Settings

    settings = Settings()
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=settings.workers,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        log_config=None,  # the app configures JSON logging for uvicorn's loggers too
        # Header size and count, the head deadline and the connection cap (LOANRISK_MAX_*,
        # LOANRISK_HEAD_TIMEOUT_S) live in this protocol, which reads them in each worker.
        http="service.limits:GuardedHttpToolsProtocol",
        timeout_keep_alive=settings.keep_alive_timeout_s,
    )


def mlflow_ui_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the MLflow UI server ``up`` starts: ``environ`` with
    ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` unless it sets that variable itself.

    With job execution on (MLflow's default) MLflow 3.17 with huey installed also starts a job
    runner for its GenAI features: 7 Huey worker processes, about 2 GB of memory as reported by
    a user of ``make run``, for features this project never uses.
    """
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **environ}


def up() -> None:
    """Train the default model if there is no champion, then run the MLflow UI and the service."""
    from cli.waiting import wait_until_ready
    from models.settings import TrainingSettings

    # Training runs in its own process so the long-lived service never holds TensorFlow in memory.
    # An empty registry has nothing to serve: the first model is promoted even if the gate would
    # hold it back, and the run records the override and the gate's verdict.
    trained = subprocess.run(
        [sys.executable, "-m", "cli", "train", "--if-no-champion", "--force-promote"]
    )
    if trained.returncode != 0:
        raise typer.Exit(trained.returncode)
    uri = TrainingSettings().tracking_uri()
    ui: subprocess.Popen[bytes] | None = None
    if uri.startswith(("http://", "https://")):
        typer.echo(f"MLflow UI: {uri}")
    else:
        mlflow_port = str(TrainingSettings().mlflow_port)
        ui = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                uri,
                "--host",
                "127.0.0.1",
                "--port",
                mlflow_port,
                "--workers",
                "1",
            ],
            env=mlflow_ui_env(os.environ),
        )
        link = f"http://127.0.0.1:{mlflow_port}"
        try:
            wait_until_ready(f"{link}/health", ui, timeout=UI_START_TIMEOUT_S)
        except (RuntimeError, TimeoutError) as exc:
            # The service is still worth running without the UI (e.g. the port is taken).
            typer.secho(
                f"warning: MLflow UI not available: {exc}", err=True, fg=typer.colors.YELLOW
            )
        else:
            typer.echo(f"MLflow UI: {link}")
    try:
        serve(host=None, port=None)
    finally:
        if ui is not None:
            ui.terminate()
            ui.wait(timeout=15)
