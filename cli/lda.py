"""``loanrisk lda``: search for a less discriminatory alternative to the model ``loanrisk train``
fits, on the same split. TensorFlow and MLflow are imported inside the command, so ``--help``
stays fast."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from cli.console import fail, runs_link
from cli.options import DataOption, PositiveLabelOption, TargetOption


def lda(
    data: DataOption = None,
    target: TargetOption = None,
    positive_label: PositiveLabelOption = None,
    schema: Annotated[
        Path | None,
        typer.Option(help="Schema JSON (default: <data stem>.schema.json if present)"),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (env LOANRISK_EXPERIMENT)")
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed for the split and the networks: as given to loanrisk train")
    ] = 0,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Maximum epochs per network (default: the training recipe's)"),
    ] = None,
    auc_tolerance: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="An alternative counts when its test AUC is at most this below the baseline's "
            "and its lowest adverse impact ratio is higher",
        ),
    ] = 0.005,  # training.lda.DEFAULT_AUC_TOLERANCE, not imported here to keep --help fast
) -> None:
    """Search for a less discriminatory alternative: retrain without each flagged proxy (alone and
    together) and move the threshold; report each one's test AUC and adverse impact ratio."""
    from training.data import BUNDLED_DATA, DataError
    from training.lda import search
    from training.stages.options import TrainOptions

    options = TrainOptions(
        data=data or BUNDLED_DATA,
        target=target,
        positive_label=positive_label,
        schema=schema,
        seed=seed,
        network_overrides={"epochs": epochs} if epochs is not None else {},
    )
    if experiment:
        options = replace(options, experiment=experiment)
    try:
        result = search(options, auc_tolerance, say=typer.echo)
    except DataError as exc:
        raise fail(str(exc)) from None
    table = result.table
    typer.echo("")
    typer.echo(
        f"{'alternative':<28} {'AUC':>7} {'change':>8} {'AIR min':>8} {'change':>7} "
        f"{'approved':>8} {'bad rate':>8}  LDA"
    )
    for row in table.itertuples(index=False):
        typer.echo(
            f"{row.alternative:<28} {row.test_roc_auc:>7.4f} {row.auc_change:>+8.4f} "
            f"{row.fairness_air_min:>8.3f} {row.air_change:>+7.3f} {row.approval_rate:>8.3f} "
            f"{row.bad_rate_approved:>8.3f}  {'yes' if row.less_discriminatory else ''}"
        )
    typer.echo("")
    typer.secho(result.conclusion, bold=True)
    typer.echo(f"  run id      {result.run_id} ({result.seconds:.0f} s)")
    typer.echo(f"  MLflow UI   {runs_link(result.tracking_uri, result.experiment_id)}")
