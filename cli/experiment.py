"""``loanrisk experiment ...``: the lesson's experiments as commands.

Registered on the main ``loanrisk`` app as a sub-command group. Heavy imports (TensorFlow,
MLflow, matplotlib) happen inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.console import fail, runs_link
from cli.options import DataOption, PositiveLabelOption, TargetOption

if TYPE_CHECKING:
    from lesson.experiments.runs import ExperimentResult
    from models.network import NetworkConfig

experiment_app = typer.Typer(
    help="Reproduce the deep-neural-networks lesson's experiments as MLflow parent and child runs.",
    no_args_is_help=True,
)

SeedOption = Annotated[int, typer.Option(help="Seed for the split, initial weights and dropout")]
QuickOption = Annotated[
    bool, typer.Option("--quick", help="A few epochs (and for mnist a sample): a smoke test")
]


ExperimentOption = Annotated[
    str, typer.Option(help="MLflow experiment to log the parent and child runs in")
]


def _given(
    data: Path | None,
    target: str | None,
    positive_label: str | None,
    experiment: str,
    seed: int,
    quick: bool,
) -> dict[str, Any]:
    """The options every experiment command takes, as ``ExperimentOptions`` fields."""
    from training.data import BUNDLED_DATA

    return {
        "data": data or BUNDLED_DATA,
        "target": target,
        "positive_label": positive_label,
        "experiment": experiment,
        "seed": seed,
        "quick": quick,
    }


def _floats(text: str, what: str) -> tuple[float, ...]:
    from lesson.experiments.data import ExperimentError

    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ExperimentError(f"{what} are comma-separated numbers, got {text!r}") from None
    if not values:
        raise ExperimentError(f"give at least one of the {what}")
    return values


def _units(text: str) -> tuple[int, ...]:
    from lesson.experiments.data import ExperimentError

    try:
        units = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        units = ()
    if not units or min(units) < 1:
        raise ExperimentError(f"hidden units are positive comma-separated integers, got {text!r}")
    return units


def _positive(value: int, what: str) -> int:
    from lesson.experiments.data import ExperimentError

    if value < 1:
        raise ExperimentError(f"{what} must be >= 1, got {value}")
    return value


def _run(start: Callable[[], ExperimentResult], columns: Sequence[str]) -> None:
    """Run an experiment, mapping bad input to a one-line error, then print its summary."""
    from lesson.experiments.data import ExperimentError
    from training.data import DataError

    try:
        result = start()
    except (DataError, ExperimentError) as exc:
        raise fail(str(exc)) from None
    _report(result, columns)


def _number(value: float) -> str:
    # Tiny differences (NumPy against Keras) would all print as 0.0000.
    return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"


def _report(result: ExperimentResult, columns: Sequence[str]) -> None:
    width = max(len(name) for name in result.children) + 2
    cells = [max(len(column) + 2, 11) for column in columns]
    typer.echo("")
    typer.secho(
        f"{result.kind}: {len(result.children)} child runs", fg=typer.colors.GREEN, bold=True
    )
    typer.echo(" " * width + "".join(f"{c:>{w}}" for c, w in zip(columns, cells, strict=True)))
    for name, summary in result.children.items():
        values = [_number(summary[c]) for c in columns]
        typer.echo(
            f"{name:<{width}}" + "".join(f"{v:>{w}}" for v, w in zip(values, cells, strict=True))
        )
    typer.echo(f"parent run  {result.parent_run_id}")
    typer.echo(f"charts      {', '.join(result.charts)}")
    link = runs_link(result.tracking_uri, result.experiment_id)
    typer.echo(f"MLflow UI   {link}/{result.parent_run_id}")


def _network(default: NetworkConfig, epochs: int, hidden_units: str | None = None) -> NetworkConfig:
    """An experiment's default network with the command-line overrides applied."""
    from dataclasses import replace

    from lesson.experiments.data import ExperimentError

    changes: dict[str, Any] = {"epochs": _positive(epochs, "epochs")}
    if hidden_units is not None:
        changes["hidden_units"] = _units(hidden_units)
    try:
        return replace(default, **changes)
    except ValueError as exc:
        raise ExperimentError(str(exc)) from None


@experiment_app.command()
def losses(
    data: DataOption = None,
    target: TargetOption = None,
    positive_label: PositiveLabelOption = None,
    experiment: ExperimentOption = "lesson-losses",
    seed: SeedOption = 0,
    epochs: Annotated[int, typer.Option(help="Epochs per loss function")] = 100,
    quick: QuickOption = False,
) -> None:
    """Binary cross-entropy vs MSE vs MAE on the predicted probability of default."""
    from lesson.experiments.losses import LossesOptions, run_losses

    def start() -> ExperimentResult:
        options = LossesOptions(
            **_given(data, target, positive_label, experiment, seed, quick),
            network=_network(LossesOptions().network, epochs),
        )
        return run_losses(options, typer.echo)

    _run(start, ["roc_auc", "log_loss", "brier", "ece", "confidently_wrong"])


GAP_COLUMNS = ["train_loss", "test_loss", "loss_gap", "train_auc", "test_auc", "auc_gap"]


@experiment_app.command()
def dropout(
    data: DataOption = None,
    target: TargetOption = None,
    positive_label: PositiveLabelOption = None,
    experiment: ExperimentOption = "lesson-dropout",
    seed: SeedOption = 0,
    values: Annotated[
        str, typer.Option(help="Keep probabilities p (1 = no dropout), comma-separated")
    ] = "0.2,0.3,0.5,0.7,0.9,1.0",
    hidden_units: Annotated[str, typer.Option(help="Hidden layer sizes")] = "256,256",
    epochs: Annotated[int, typer.Option(help="Epochs per value")] = 100,
    quick: QuickOption = False,
) -> None:
    """Sweep dropout's keep-probability p: train-test gap against p."""
    from lesson.experiments.dropout import DropoutOptions, run_dropout

    def start() -> ExperimentResult:
        options = DropoutOptions(
            **_given(data, target, positive_label, experiment, seed, quick),
            keep_probabilities=_floats(values, "keep probabilities"),
            network=_network(DropoutOptions().network, epochs, hidden_units),
        )
        return run_dropout(options, typer.echo)

    _run(start, GAP_COLUMNS)


@experiment_app.command()
def l2(
    data: DataOption = None,
    target: TargetOption = None,
    positive_label: PositiveLabelOption = None,
    experiment: ExperimentOption = "lesson-l2",
    seed: SeedOption = 0,
    values: Annotated[
        str, typer.Option(help="Keras L2 coefficients c (lesson's lambda = 2nc), comma-separated")
    ] = "0,1e-5,1e-4,1e-3,1e-2,1e-1",
    hidden_units: Annotated[str, typer.Option(help="Hidden layer sizes")] = "256,256",
    epochs: Annotated[int, typer.Option(help="Epochs per value")] = 100,
    quick: QuickOption = False,
) -> None:
    """Sweep the L2 weight-decay coefficient: train-test gap against it."""
    from lesson.experiments.l2 import L2Options, run_l2

    def start() -> ExperimentResult:
        options = L2Options(
            **_given(data, target, positive_label, experiment, seed, quick),
            coefficients=_floats(values, "L2 coefficients"),
            network=_network(L2Options().network, epochs, hidden_units),
        )
        return run_l2(options, typer.echo)

    _run(start, GAP_COLUMNS)


@experiment_app.command()
def backprop(
    data: DataOption = None,
    target: TargetOption = None,
    positive_label: PositiveLabelOption = None,
    experiment: ExperimentOption = "lesson-backprop",
    seed: SeedOption = 0,
    hidden_units: Annotated[str, typer.Option(help="Hidden layer sizes")] = "64,32",
    learning_rate: Annotated[float, typer.Option(help="Gradient-descent step size")] = 0.3,
    epochs: Annotated[int, typer.Option(help="Full-batch gradient-descent steps")] = 100,
    quick: QuickOption = False,
) -> None:
    """lesson/backprop.py by plain gradient descent beside Keras on the same network."""
    from lesson.experiments.backprop import BackpropOptions, run_backprop

    def start() -> ExperimentResult:
        options = BackpropOptions(
            **_given(data, target, positive_label, experiment, seed, quick),
            hidden_units=_units(hidden_units),
            learning_rate=learning_rate,
            epochs=_positive(epochs, "epochs"),
        )
        return run_backprop(options, typer.echo)

    _run(start, ["objective", "test_loss", "test_auc", "max_abs_objective_difference"])


@experiment_app.command()
def mnist(
    train: Annotated[Path, typer.Option(help="Training CSV: a label column, then pixel columns")],
    test: Annotated[Path, typer.Option(help="Test CSV in the same format")],
    experiment: ExperimentOption = "lesson-mnist",
    seed: Annotated[int, typer.Option(help="Seed for the sample, initial weights and dropout")] = 0,
    keep_probability: Annotated[
        float, typer.Option(help="Dropout as the lesson's p: probability of KEEPING a unit")
    ] = 0.7,
    hidden_units: Annotated[str, typer.Option(help="Hidden layer sizes")] = "512,512",
    epochs: Annotated[int, typer.Option(help="Epochs per network")] = 20,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size")] = 128,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    quick: QuickOption = False,
) -> None:
    """Lesson-end project: dropout on input and hidden layers vs none, on MNIST-format CSVs."""
    from lesson.experiments.mnist import MnistOptions, run_mnist

    def start() -> ExperimentResult:
        options = MnistOptions(
            train=train,
            test=test,
            experiment=experiment,
            seed=seed,
            quick=quick,
            keep_probability=keep_probability,
            hidden_units=_units(hidden_units),
            epochs=_positive(epochs, "epochs"),
            batch_size=_positive(batch_size, "batch size"),
            learning_rate=learning_rate,
        )
        return run_mnist(options, typer.echo)

    _run(start, ["train_accuracy", "test_accuracy", "accuracy_gap", "test_loss"])
