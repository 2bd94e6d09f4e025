"""The ``loanrisk`` command: train models, serve them, or bring the whole local stack up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from models.network import NetworkConfig
from training.experiments.cli import experiment_app

app = typer.Typer(
    help="Loan-default risk scoring: train a Keras DNN, register it in MLflow, serve it over HTTP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(experiment_app, name="experiment")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line reason on stderr and return the exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def parse_hidden_units(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter("hidden units are comma-separated integers, e.g. 64,32") from None
    if not units or min(units) < 1:
        raise typer.BadParameter("hidden units are positive integers, e.g. 64,32")
    return units


def runs_link(tracking_uri: str, experiment_id: str) -> str:
    """Where the experiment's training runs table opens in the MLflow UI."""
    if tracking_uri.startswith(("http://", "https://")):
        base = tracking_uri.rstrip("/")
    else:
        base = f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT', '5000')}"
    return f"{base}/#/experiments/{experiment_id}/runs"


def print_epoch(epoch: int, total: int, metrics: dict[str, float]) -> None:
    typer.echo(
        f"epoch {epoch:>3}/{total}  loss {metrics['train_loss']:.4f}  "
        f"val_loss {metrics['val_loss']:.4f}  auc {metrics['train_auc']:.4f}  "
        f"val_auc {metrics['val_auc']:.4f}"
    )


@app.command()
def train(
    data: Annotated[
        Path | None, typer.Option(help="CSV or Parquet file; default: the bundled credit_data.csv")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column (else from the schema)")] = None,
    positive_label: Annotated[
        str | None, typer.Option(help="Target value meaning default (else from the schema)")
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            help="Schema JSON: types, bounds, dropped and protected columns. "
            "Default: <data stem>.schema.json next to the data file, if present"
        ),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (env LOANRISK_EXPERIMENT)")
    ] = None,
    epochs: Annotated[
        int, typer.Option(min=1, help="Maximum epochs (early stopping may end sooner)")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed for the split, initialisation and dropout")] = 0,
    hidden_units: Annotated[
        str, typer.Option(help="Hidden layer sizes, comma-separated")
    ] = "64,32",
    keep_probability: Annotated[
        float,
        typer.Option(
            max=1.0,
            help="Dropout as the lesson's p: probability of KEEPING a unit (1 = no dropout)",
        ),
    ] = 0.7,
    l2: Annotated[
        float, typer.Option(min=0.0, help="L2 weight-decay coefficient per hidden layer")
    ] = 1e-4,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    batch_size: Annotated[int, typer.Option(min=1, help="Mini-batch size")] = 128,
    patience: Annotated[
        int, typer.Option(min=0, help="Early-stopping patience in epochs (0: off)")
    ] = 15,
    if_no_champion: Annotated[
        bool,
        typer.Option(
            "--if-no-champion", help="Do nothing when the registry already has a champion"
        ),
    ] = False,
) -> None:
    """Train the DNN, log the run to MLflow, register the model and make it champion."""
    from models.mlflow_flavor import use_tracking
    from training.data import BUNDLED_DATA, DataError
    from training.registry import CHAMPION, alias_version, model_name
    from training.train import TrainOptions
    from training.train import train as run_training

    if if_no_champion:
        use_tracking()
        version = alias_version(model_name(), CHAMPION)
        if version is not None:
            typer.echo(f"{model_name()}@{CHAMPION} is version {version}; not training")
            return
    try:
        network = NetworkConfig(
            hidden_units=parse_hidden_units(hidden_units),
            keep_probability=keep_probability,
            l2=l2,
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=epochs,
            early_stopping_patience=patience,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    options = TrainOptions(
        data=data or BUNDLED_DATA,
        target=target,
        positive_label=positive_label,
        schema=schema,
        seed=seed,
        network=network,
        **({"experiment": experiment} if experiment else {}),
    )
    try:
        result = run_training(options, report=print_epoch, say=typer.echo)
    except DataError as exc:
        raise fail(str(exc)) from None
    metrics = result.test_metrics
    typer.echo("")
    typer.secho("trained and registered", fg=typer.colors.GREEN, bold=True)
    typer.echo(f"  run id      {result.run_id}")
    typer.echo(f"  model       {result.model_name} version {result.version} (alias {result.alias})")
    typer.echo(f"  epochs      {result.epochs_run}")
    typer.echo(
        f"  test        ROC AUC {metrics['roc_auc']:.4f}  log loss {metrics['log_loss']:.4f}  "
        f"Brier {metrics['brier']:.4f}"
    )
    typer.echo(f"  MLflow UI   {runs_link(result.tracking_uri, result.experiment_id)}")


@app.command()
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
    )


@app.command()
def up() -> None:
    """Train the default model if there is no champion, then run the MLflow UI and the service."""
    from models.mlflow_flavor import tracking_uri

    # Training runs in its own process so the long-lived service never holds TensorFlow in memory.
    trained = subprocess.run([sys.executable, "-m", "training.cli", "train", "--if-no-champion"])
    if trained.returncode != 0:
        raise typer.Exit(trained.returncode)
    uri = tracking_uri()
    ui: subprocess.Popen[bytes] | None = None
    if uri.startswith(("http://", "https://")):
        typer.echo(f"MLflow UI: {uri}")
    else:
        mlflow_port = os.environ.get("MLFLOW_PORT", "5000")
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
        )
        time.sleep(1)
        typer.echo(f"MLflow UI: http://127.0.0.1:{mlflow_port}")
    try:
        serve(host=None, port=None)
    finally:
        if ui is not None:
            ui.terminate()
            ui.wait(timeout=15)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
