"""The ``loanrisk`` command: train models, serve them, or bring the whole local stack up.

Each command lives in the module of its kind (``cli.train``, ``cli.serve``, ``cli.synth``,
``cli.experiment``) as a plain function; this module only names them on the app.
"""

from __future__ import annotations

import typer

from cli.db import db_app
from cli.experiment import experiment_app
from cli.lda import lda
from cli.serve import serve, up
from cli.synth import synth
from cli.train import benchmark, train

app = typer.Typer(
    help="Loan-default risk scoring: train a Keras DNN, register it in MLflow, serve it over HTTP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(train)
app.command()(benchmark)
app.command()(lda)
app.command()(serve)
app.command()(up)
app.command()(synth)
app.add_typer(experiment_app, name="experiment")
app.add_typer(db_app, name="db")


def main() -> None:
    app()
