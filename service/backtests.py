"""The latest back-test of the versions being served, read from MLflow and published on /metrics.

``loanrisk monitor`` (:mod:`monitoring.report`) logs one MLflow run per model version it covers to
the experiment :data:`BACKTEST_EXPERIMENT`, tagged ``model_name``, ``model_version``, ``status``
and ``status_<check>``, with the whole period's figures as metrics named ``total_<figure>``. The
service reads the newest such run for the champion's version (and the challenger's, when one is
in the shadow) at start-up, at every registry check (``LOANRISK_RELOAD_INTERVAL_S``) and on
``POST /v1/admin/reload``, and publishes it as gauges labelled ``name``, ``version``, ``alias``:

- ``loanrisk_backtest_<figure>``: ``auc``, ``gini``, ``ks``, ``observed_to_expected``,
  ``approve_rate``, ``review_rate``, ``decline_rate``, ``applications``, ``outcomes``,
  ``defaults``, ``score_psi``, ``max_psi`` (those the run has: a figure without enough outcomes
  is not logged, so it is not published);
- ``loanrisk_backtest_feature_psi{feature=...}``: PSI of each input;
- ``loanrisk_backtest_status{check=...}``: 0 ok, 1 watch, 2 breach for ``discrimination``,
  ``calibration``, ``stability`` and ``overall`` (a check that said n/a is not published);
- ``loanrisk_backtest_timestamp_seconds``: when that monitoring run ended (Unix seconds), so an
  alert can also fire when the back-test is stale.

An alert on ``loanrisk_backtest_status == 2`` fires on the same breach that makes ``loanrisk
monitor`` exit 3. The service never computes these figures itself: it has no outcomes in memory,
and the monitor is the one place they are computed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.model_store import ModelStore

logger = logging.getLogger(__name__)

BACKTEST_EXPERIMENT = "loan-default-monitoring"
# Tags and metric prefixes of a monitoring run: written by monitoring.report.log_run.
NAME_TAG = "model_name"
VERSION_TAG = "model_version"
STATUS_TAG = "status"
CHECK_TAG_PREFIX = "status_"
TOTAL_PREFIX = "total_"
FEATURE_PSI_PREFIX = "psi_"
STATUS_VALUES = {"ok": 0.0, "watch": 1.0, "breach": 2.0}
LABELS = ["name", "version", "alias"]
# Figures computed on decisions with an outcome, which only lent loans have.
OUTCOME_FIGURES = {"auc", "gini", "ks", "observed_to_expected", "outcomes", "defaults"}
OUTCOME_NOTE = " (on the outcomes of approved and reviewed loans only)"
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class Backtest:
    """The newest monitoring run of one version: its figures, statuses and end time."""

    name: str
    version: str
    alias: str
    run_id: str
    ended_at: float  # Unix seconds
    figures: dict[str, float]  # "auc", "psi_Income", ... as logged without "total_"
    statuses: dict[str, str]  # check ("overall" included) -> ok / watch / breach / n/a


def latest_backtest(name: str, version: str, alias: str) -> Backtest | None:
    """The newest run of :data:`BACKTEST_EXPERIMENT` tagged with this version, or None when the
    experiment or such a run does not exist. Raises what the MLflow client raises when the
    tracking server cannot be read."""
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name(BACKTEST_EXPERIMENT)
    if experiment is None:
        return None
    quoted_name, quoted_version = _quoted(name), _quoted(version)
    if quoted_name is None or quoted_version is None:
        return None  # a name MLflow's filter language cannot spell: no back-test can be found
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.{NAME_TAG} = {quoted_name} "
        f"AND tags.{VERSION_TAG} = {quoted_version} AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run = runs[0]
    tags = run.data.tags
    statuses = {
        key.removeprefix(CHECK_TAG_PREFIX): value
        for key, value in tags.items()
        if key.startswith(CHECK_TAG_PREFIX)
    }
    if STATUS_TAG in tags:
        statuses["overall"] = tags[STATUS_TAG]
    return Backtest(
        name=name,
        version=version,
        alias=alias,
        run_id=run.info.run_id,
        ended_at=(run.info.end_time or run.info.start_time) / 1000,
        figures={
            key.removeprefix(TOTAL_PREFIX): value
            for key, value in run.data.metrics.items()
            if key.startswith(TOTAL_PREFIX)
        },
        statuses=statuses,
    )


def _quoted(text: str) -> str | None:
    """``text`` as a string of MLflow's filter language, which has no escapes: in single quotes,
    or double quotes when it holds a single quote; None when it holds both."""
    if "'" not in text:
        return f"'{text}'"
    return f'"{text}"' if '"' not in text else None


class BacktestGauges(Collector):
    """The newest back-test of each store's current version, as Prometheus gauges.

    :meth:`refresh` reads them (blocking: call it off the event loop); :meth:`collect` publishes
    what was last read. A failed read keeps the figures read before and logs a warning: stale
    figures carry their own timestamp, and /metrics never waits on MLflow.
    """

    def __init__(self, stores: Sequence[ModelStore]) -> None:
        self._stores = list(stores)
        self._latest: list[Backtest] = []
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    @property
    def latest(self) -> list[Backtest]:
        return list(self._latest)

    def refresh(self) -> None:
        """Read the newest back-test of each store's current version (blocking; one at a time,
        so that an older read never replaces a newer one)."""
        with self._refreshing:
            self._refresh()

    def _refresh(self) -> None:
        found: list[Backtest] = []
        for store in self._stores:
            current = store.current
            if current is None:
                continue
            try:
                backtest = latest_backtest(current.name, current.version, store.alias)
            except Exception as exc:  # MLflow raises several kinds; the service must go on
                logger.warning(
                    "could not read the latest back-test of %s version %s: %s",
                    current.name,
                    current.version,
                    exc,
                )
                backtest = next(
                    (
                        b
                        for b in self._latest
                        if (b.version, b.alias) == (current.version, store.alias)
                    ),
                    None,
                )
            if backtest is not None:
                found.append(backtest)
        with self._lock:
            self._latest = found

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            latest = list(self._latest)
        if not latest:
            return
        families: dict[str, GaugeMetricFamily] = {}

        def family(metric: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
            if metric not in families:
                families[metric] = GaugeMetricFamily(metric, documentation, labels=labels)
            return families[metric]

        for b in latest:
            labels = [b.name, b.version, b.alias]
            family(
                "loanrisk_backtest_timestamp_seconds",
                "When the latest loanrisk monitor run of this version ended (Unix seconds)",
                LABELS,
            ).add_metric(labels, b.ended_at)
            for check, status in sorted(b.statuses.items()):
                if status in STATUS_VALUES:
                    family(
                        "loanrisk_backtest_status",
                        "Latest back-test status per check: 0 ok, 1 watch, 2 breach",
                        [*LABELS, "check"],
                    ).add_metric([*labels, check], STATUS_VALUES[status])
            for figure, value in sorted(b.figures.items()):
                if figure.startswith(FEATURE_PSI_PREFIX):
                    family(
                        "loanrisk_backtest_feature_psi",
                        "Latest back-test's PSI of each input, decisions vs training reference",
                        [*LABELS, "feature"],
                    ).add_metric([*labels, figure.removeprefix(FEATURE_PSI_PREFIX)], value)
                elif METRIC_NAME.fullmatch(figure):
                    family(
                        f"loanrisk_backtest_{figure}",
                        f"Latest back-test's {figure.replace('_', ' ')} over its whole period"
                        + (OUTCOME_NOTE if figure in OUTCOME_FIGURES else ""),
                        LABELS,
                    ).add_metric(labels, value)
        yield from families.values()
