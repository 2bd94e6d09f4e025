"""``loanrisk monitor``: back-test decisions against outcomes per model version and window.

Exit codes (for a scheduler): 0 every check ok or watch (or n/a: too little data); 3 a check
breached; 2 a usage error (a bad date, window or option, or LOANRISK_AUDIT_DB_URL naming a SQLite
file that does not exist); 1 the audit database or the registry could not be read. ``--compare``
exits 0 once the comparison is printed (it judges nothing).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer

from cli.console import fail

EXIT_BREACH = 3


def _moment(text: str | None, option: str, end: bool) -> datetime | None:
    """A date (``--until`` takes the whole day) or an ISO date-time; naive means UTC."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} {text!r}: expected a date (2025-06-30) or an ISO date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def monitor(
    since: Annotated[str | None, typer.Option(help="First decision date (UTC) covered")] = None,
    until: Annotated[str | None, typer.Option(help="Last decision date (UTC) covered")] = None,
    window: Annotated[str, typer.Option(help="Window length: 30d, 2w, 12h")] = "30d",
    version: Annotated[str | None, typer.Option(help="Only this model version")] = None,
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(
            help="Two versions or aliases (champion challenger): AUC difference (DeLong), "
            "calibration and swap sets on the applicants both scored",
        ),
    ] = None,
    model_name: Annotated[str, typer.Option(help="Registered model (for --compare)")] = (
        "loan-default"
    ),
    auc_drop_breach: Annotated[
        float, typer.Option(help="AUC below the reference AUC by more")
    ] = 0.05,
    auc_drop_watch: Annotated[float, typer.Option()] = 0.025,
    psi_breach: Annotated[float, typer.Option(help="Largest PSI above this")] = 0.25,
    psi_watch: Annotated[float, typer.Option()] = 0.10,
    oe_breach: Annotated[tuple[float, float], typer.Option(help="O/E outside [low, high]")] = (
        0.8,
        1.25,
    ),
    oe_watch: Annotated[tuple[float, float], typer.Option()] = (0.9, 1.11),
    min_per_class: Annotated[
        int, typer.Option(help="Defaulted and repaid outcomes needed for AUC/KS")
    ] = 10,
    min_outcomes: Annotated[int, typer.Option(help="Outcomes needed for calibration")] = 30,
    log_mlflow: Annotated[
        bool, typer.Option("--mlflow/--no-mlflow", help="Log a run per version to MLflow")
    ] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print statuses as JSON")] = False,
) -> None:
    """Back-test decisions in LOANRISK_AUDIT_DB_URL (which must exist) against their outcomes
    (approved loans only), per model version and window; log to MLflow; exit 3 on a breach."""
    from sqlalchemy.exc import SQLAlchemyError

    from cli.db import existing_audit_url
    from models.registered import RegistryError
    from monitoring.backtest import Thresholds, backtest, parse_window, read_decisions
    from service.audit import make_engine

    start, end = _moment(since, "--since", False), _moment(until, "--until", True)
    try:
        length = parse_window(window)
    except ValueError as exc:
        raise fail(str(exc)) from None
    thresholds = Thresholds(
        auc_drop_watch=auc_drop_watch,
        auc_drop_breach=auc_drop_breach,
        psi_watch=psi_watch,
        psi_breach=psi_breach,
        oe_watch=oe_watch,
        oe_breach=oe_breach,
        min_per_class=min_per_class,
        min_outcomes=min_outcomes,
    )
    engine = make_engine(existing_audit_url())
    try:
        if compare is not None:
            _compare(engine, model_name, compare)
            return
        frame = read_decisions(engine, start, end, version)
        from monitoring.backtest import registry_info

        reports = backtest(frame, length, start, end, registry_info, thresholds)
    except SQLAlchemyError as exc:
        raise fail(f"audit database: {exc}".splitlines()[0], code=1) from None
    except RegistryError as exc:
        raise fail(str(exc), code=1) from None
    finally:
        engine.dispose()
    if not reports:
        raise fail("no decisions in the period asked for", code=1)
    from monitoring.report import log_run, markdown

    for report in reports:
        run_id = log_run(report, thresholds) if log_mlflow else None
        if json_output:
            continue
        typer.echo(markdown(report, thresholds))
        if run_id:
            typer.echo(f"MLflow run {run_id} (experiment loan-default-monitoring)\n")
    if json_output:
        typer.echo(
            json.dumps(
                [
                    {
                        "model_name": r.model_name,
                        "model_version": r.model_version,
                        "overall": r.overall,
                        "checks": r.status,
                        "auc": r.total.auc,
                        "reference_auc": r.total.reference_auc,
                        "reference_auc_on": r.total.reference_auc_on,
                        "ks": r.total.ks,
                        "observed_to_expected": r.total.observed_to_expected,
                        "score_psi": r.total.score_psi,
                        "feature_psi": r.total.feature_psi,
                        "outcomes": r.total.outcomes,
                        "applications": r.total.applications,
                    }
                    for r in reports
                ]
            )
        )
    if any(r.overall == "breach" for r in reports):
        raise typer.Exit(EXIT_BREACH)


def _resolve(model_name: str, label: str) -> str:
    from models.registered import resolve_alias

    return label if label.isdigit() else resolve_alias(model_name, label)


def _compare(engine: object, model_name: str, labels: tuple[str, str]) -> None:
    from monitoring.compare import compare
    from monitoring.report import compare_markdown

    champion, challenger = (_resolve(model_name, label) for label in labels)
    typer.echo(compare_markdown(compare(engine, model_name, champion, challenger)))  # type: ignore[arg-type]
