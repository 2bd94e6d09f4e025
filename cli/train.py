"""``loanrisk train`` and ``loanrisk benchmark``: fit the model, or cross-validate it against the
baselines. TensorFlow and MLflow are imported inside the commands, so ``--help`` stays fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cli.console import fail, runs_link, stdout_to_stderr
from cli.options import DataOption, PositiveLabelOption, TargetOption
from models.network import NetworkConfig


def parse_hidden_units(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter("hidden units are comma-separated integers, e.g. 64,32") from None
    if not units or min(units) < 1:
        raise typer.BadParameter("hidden units are positive integers, e.g. 64,32")
    return units


def print_epoch(epoch: int, total: int, metrics: dict[str, float]) -> None:
    typer.echo(
        f"epoch {epoch:>3}/{total}  loss {metrics['train_loss']:.4f}  "
        f"val_loss {metrics['val_loss']:.4f}  auc {metrics['train_auc']:.4f}  "
        f"val_auc {metrics['val_auc']:.4f}"
    )


def train(
    data: DataOption = None,
    target: TargetOption = None,
    positive_label: PositiveLabelOption = None,
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
        int | None, typer.Option(min=1, help="Maximum epochs (early stopping may end sooner)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split, initialisation and dropout")] = 0,
    hidden_units: Annotated[
        str | None,
        typer.Option(help="Hidden layer sizes, comma-separated (default: by training-set size)"),
    ] = None,
    keep_probability: Annotated[
        float | None,
        typer.Option(
            max=1.0,
            help="Dropout as the lesson's p: probability of KEEPING a unit (1 = no dropout)",
        ),
    ] = None,
    l2: Annotated[
        float | None, typer.Option(min=0.0, help="L2 weight-decay coefficient per hidden layer")
    ] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Adam learning rate")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Mini-batch size")] = None,
    patience: Annotated[
        int | None, typer.Option(min=0, help="Early-stopping patience in epochs (0: off)")
    ] = None,
    ensemble_size: Annotated[
        int | None,
        typer.Option(min=1, help="Networks trained from different seeds and averaged"),
    ] = None,
    calibration: Annotated[
        str, typer.Option(help="Calibration fitted on the validation split: platt, isotonic, none")
    ] = "platt",
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Operating threshold on the probability of default "
            "(default: the largest KS gap on the validation split)",
        ),
    ] = None,
    gate_margin: Annotated[
        float,
        typer.Option(
            help="Champion only if test AUC >= current champion's + this margin "
            "(negative: tolerate a small drop)"
        ),
    ] = 0.0,
    force_promote: Annotated[
        bool,
        typer.Option("--force-promote", help="Make this version champion even if the gate says no"),
    ] = False,
    min_air: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Hold the version back as challenger when its lowest adverse impact ratio "
            "(fairness_air_min) is below this (default: off; docs/fairness.md says why)",
        ),
    ] = None,
    air_screen: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Name every protected group whose adverse impact ratio is below this",
        ),
    ] = 0.80,  # training.fairness.AIR_SCREEN, not imported here to keep --help fast
    if_no_champion: Annotated[
        bool,
        typer.Option(
            "--if-no-champion", help="Do nothing when the registry already has a champion"
        ),
    ] = False,
) -> None:
    """Train the DNN and the baselines, log the run to MLflow, register the model, gate it."""
    # TensorFlow's C++ start-up and graph notes (oneDNN, absl, "NodeDef mentions attribute")
    # are not this command's output; set before TensorFlow is imported. A value already in the
    # environment wins (TF_CPP_MIN_LOG_LEVEL=0 shows them all).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from models.mlflow_flavor import use_tracking
    from models.settings import TrainingSettings
    from training.data import BUNDLED_DATA, DataError
    from training.registry import CHAMPION, alias_version, model_name
    from training.train import TrainOptions, summarise
    from training.train import train as run_training

    if if_no_champion:
        use_tracking()
        version = alias_version(model_name(), CHAMPION)
        if version is not None:
            typer.echo(f"{model_name()}@{CHAMPION} is version {version}; not training")
            return
    overrides = {
        key: value
        for key, value in {
            "hidden_units": parse_hidden_units(hidden_units) if hidden_units else None,
            "keep_probability": keep_probability,
            "l2": l2,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "epochs": epochs,
            "early_stopping_patience": patience,
            "ensemble_size": ensemble_size,
        }.items()
        if value is not None
    }
    methods = {"platt": "platt", "isotonic": "isotonic", "none": "identity"}
    if calibration not in methods:
        raise fail(f"--calibration must be one of {sorted(methods)}")
    try:
        # Validated now, before any data is read; the recipe itself is sized to the data later.
        NetworkConfig.for_rows(0, **overrides)
    except ValueError as exc:
        raise fail(str(exc)) from None
    options = TrainOptions(
        data=data or BUNDLED_DATA,
        target=target,
        positive_label=positive_label,
        schema=schema,
        seed=seed,
        network_overrides=overrides,
        calibration=methods[calibration],  # type: ignore[arg-type]
        threshold=threshold,
        gate_margin=gate_margin,
        force_promote=force_promote,
        min_air=min_air,
        air_screen=air_screen,
        experiment=experiment or TrainingSettings().experiment,
    )
    try:
        result = run_training(
            options,
            report=print_epoch,
            say=typer.echo,
            on_member=lambda k, n: typer.echo(f"network {k} of {n}"),
        )
    except DataError as exc:
        raise fail(str(exc)) from None
    metrics = result.test_metrics
    typer.echo("")
    typer.secho("trained and registered", fg=typer.colors.GREEN, bold=True)
    typer.echo(f"  run id      {result.run_id}")
    typer.echo(f"  model       {result.model_name} version {result.version} (alias {result.alias})")
    if result.gate is not None:
        typer.echo(f"  gate        {result.gate.outcome}: {result.gate.reason}")
    typer.echo(f"  epochs      {result.epochs_run}")
    typer.echo(
        f"  test        ROC AUC {metrics['roc_auc']:.4f}  log loss {metrics['log_loss']:.4f}  "
        f"Brier {metrics['brier']:.4f}  ECE {metrics['ece']:.4f}"
    )
    for name, baseline in result.baseline_metrics.items():
        typer.echo(f"  {name:<11} {summarise(baseline)}")
    for index, line in enumerate(result.fairness_screen):
        typer.echo(f"  {'fairness' if index == 0 else '':<11} {line}")
    if result.proxy_summary:
        typer.echo(f"  {'proxies':<11} {result.proxy_summary}")
    typer.echo(f"  MLflow UI   {runs_link(result.tracking_uri, result.experiment_id)}")


def benchmark(
    data: DataOption = None,
    target: TargetOption = None,
    positive_label: PositiveLabelOption = None,
    schema: Annotated[
        Path | None,
        typer.Option(help="Schema JSON (default: <data stem>.schema.json if present)"),
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="Stratified cross-validation folds")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the folds and the models")] = 0,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="DNN: maximum epochs (default: the recipe's)")
    ] = None,
    ensemble_size: Annotated[
        int | None, typer.Option(min=1, help="DNN: networks averaged (default: the recipe's)")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print exactly one JSON object on stdout")
    ] = False,
) -> None:
    """Cross-validate the DNN pipeline, logistic regression and LightGBM on the same folds."""
    import json

    from training.benchmark import benchmark_file
    from training.data import BUNDLED_DATA, DataError

    def progress(message: str) -> None:
        typer.echo(message, err=True)

    try:
        with stdout_to_stderr():
            result = benchmark_file(
                data or BUNDLED_DATA,
                target,
                positive_label,
                schema,
                folds=folds,
                seed=seed,
                progress=progress,
                network_overrides={
                    key: value
                    for key, value in (("epochs", epochs), ("ensemble_size", ensemble_size))
                    if value is not None
                },
            )
    except DataError as exc:
        raise fail(str(exc)) from None
    summary = result.to_json()
    if json_output:
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"{summary['dataset']}: {summary['rows']} rows, positive rate "
        f"{summary['positive_rate']:.3f}, {summary['folds']} folds, seed {seed}"
    )
    typer.echo(f"{'model':<10} {'AUC mean':>9} {'AUC std':>8} {'Brier':>7} {'ECE':>7} {'fit s':>7}")
    for name, row in summary["models"].items():
        typer.echo(
            f"{name:<10} {row['auc_mean']:>9.4f} {row['auc_std']:>8.4f} "
            f"{row['brier_mean']:>7.4f} {row['ece_mean']:>7.4f} {row['fit_seconds']:>7.1f}"
        )
