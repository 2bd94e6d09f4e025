"""The ``loanrisk`` command: train models, serve them, or bring the whole local stack up.

Each command lives in the module of its kind (``cli.train``, ``cli.serve``, ``cli.synth``,
``cli.experiment``) as a plain function; this module only names them on the app.
"""

from __future__ import annotations

import typer

from cli.db import db_app
from cli.experiment import experiment_app
from cli.lda import lda
from cli.monitor import monitor
from cli.outcomes import outcomes_app
from cli.score import score
from cli.serve import serve, up
from cli.synth import synth
from cli.train import benchmark, train

app = typer.Typer(
    help="Loan-default risk scoring: train a Keras DNN, register it in MLflow, serve it over HTTP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# In the order a lender meets them: train and compare models, make and score books, serve, then
# the months after (outcomes, back-tests), then operations and the lesson.
app.command()(train)
app.command()(benchmark)
app.command()(lda)
app.command()(synth)
app.command(name="score")(score)
app.command()(serve)
app.command()(up)
app.add_typer(outcomes_app, name="outcomes")
app.command()(monitor)
app.add_typer(db_app, name="db")
app.add_typer(experiment_app, name="experiment")


# The settings classes whose validation errors are the operator's LOANRISK_* variables.
SETTINGS_MODELS = {"SharedSettings", "TrainingSettings", "Settings"}


def main() -> None:
    """Run the app; a setting (``LOANRISK_*``) that does not validate is one line per error and
    exit 2, whichever command read it, instead of pydantic's traceback."""
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as exc:
        if exc.title not in SETTINGS_MODELS:
            raise
        for error in exc.errors(include_url=False):
            name = "_".join(str(part) for part in error["loc"]).upper()
            typer.echo(f"error: setting LOANRISK_{name}: {error['msg']}", err=True)
        raise SystemExit(2) from None
