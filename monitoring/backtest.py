"""Decisions and their outcomes per model version and window of decision time, and the checks.

Outcomes arrive for approved loans only (:data:`SELECTION_NOTE`): discrimination and calibration
are computed on the decisions that have an outcome, never with declined applicants counted as
repaid. Stability (PSI) needs no outcome and covers every decision in the window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sqlalchemy import Engine, select

from models.reference import TrainingReference
from monitoring.stats import (
    BandCalibration,
    auc_interval,
    band_calibration,
    bootstrap_interval,
    ks_statistic,
    observed_to_expected,
)
from service.audit.schema import decisions, outcomes
from service.backtests import FEATURE_PSI_PREFIX
from service.metrics import MIN_PSI_SAMPLE

Status = Literal["ok", "watch", "breach", "n/a"]
_RANK: dict[str, int] = {"n/a": 0, "ok": 1, "watch": 2, "breach": 3}

SELECTION_NOTE = (
    "Outcomes arrive for approved loans only (selection effect): discrimination and calibration "
    "are measured on the decisions that have an outcome, which under-represents the riskiest "
    "applicants; declined applicants are never counted as repaid."
)


@dataclass(frozen=True)
class Thresholds:
    """When a check says watch or breach (defaults documented in docs/monitoring.md).

    - discrimination: the window's AUC below the version's test AUC by more than ``auc_drop_*``;
    - calibration: observed/expected defaults outside ``oe_watch`` / ``oe_breach`` (low, high);
    - stability: the largest PSI (any input or the score) above ``psi_*``.
    A check with too little data (fewer than ``min_per_class`` defaulted or repaid outcomes for
    discrimination, ``min_outcomes`` outcomes for calibration, 50 decisions for PSI) says n/a.
    """

    auc_drop_watch: float = 0.025
    auc_drop_breach: float = 0.05
    psi_watch: float = 0.10
    psi_breach: float = 0.25
    oe_watch: tuple[float, float] = (0.9, 1.11)
    oe_breach: tuple[float, float] = (0.8, 1.25)
    min_per_class: int = 10
    min_outcomes: int = 30
    bootstrap_resamples: int = 200


def worst(statuses: Sequence[Status]) -> Status:
    """The most severe of some statuses (breach > watch > ok > n/a)."""
    return max(statuses, key=_RANK.__getitem__, default="n/a")


@dataclass
class WindowResult:
    """One model version over one window of decision time ``[start, end)``."""

    model_name: str
    model_version: str
    start: datetime
    end: datetime
    applications: int
    approve_rate: float
    review_rate: float
    decline_rate: float
    outcomes: int  # decisions in the window with an outcome
    outcomes_by_decision: dict[str, int]
    defaults: int
    auc: float | None = None
    auc_interval: tuple[float, float] | None = None  # DeLong
    gini: float | None = None
    gini_interval: tuple[float, float] | None = None
    ks: float | None = None
    ks_interval: tuple[float, float] | None = None  # bootstrap
    expected_defaults: float | None = None
    observed_to_expected: float | None = None
    bands: list[BandCalibration] = field(default_factory=list)
    feature_psi: dict[str, float] = field(default_factory=dict)
    score_psi: float | None = None
    # What the window's AUC is held to (reference_auc) and on which test applicants.
    reference_auc: float | None = None
    reference_auc_on: str = ""
    checks: dict[str, Status] = field(default_factory=dict)

    @property
    def max_psi(self) -> float | None:
        values = [*self.feature_psi.values(), *([] if self.score_psi is None else [self.score_psi])]
        return max(values) if values else None


def parse_window(text: str) -> timedelta:
    """``30d``, ``2w``, ``12h`` (a positive whole number and a unit: h, d or w) as a timedelta.
    Raises ValueError otherwise."""
    units = {"h": "hours", "d": "days", "w": "weeks"}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise ValueError(f"window {text!r}: expected a whole number and h, d or w (e.g. 30d)")
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def read_decisions(
    engine: Engine,
    since: datetime | None = None,
    until: datetime | None = None,
    version: str | None = None,
) -> pd.DataFrame:
    """Decisions with ``since <= created_at < until`` (UTC), each with its outcome if any.

    Columns: request_id, created_at (UTC), model_name, model_version, inputs (dict),
    probability_of_default, risk_band, decision, policy (dict, or None before audit revision
    0003), defaulted (float: 1.0, 0.0, or NaN without an outcome), observed_at.
    """
    query = select(
        decisions.c.request_id,
        decisions.c.created_at,
        decisions.c.model_name,
        decisions.c.model_version,
        decisions.c.inputs,
        decisions.c.probability_of_default,
        decisions.c.risk_band,
        decisions.c.decision,
        decisions.c.policy,
        outcomes.c.defaulted,
        outcomes.c.observed_at,
    ).select_from(decisions.outerjoin(outcomes, outcomes.c.request_id == decisions.c.request_id))
    if since is not None:
        query = query.where(decisions.c.created_at >= since)
    if until is not None:
        query = query.where(decisions.c.created_at < until)
    if version is not None:
        query = query.where(decisions.c.model_version == version)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows], columns=list(query.selected_columns.keys()))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["defaulted"] = frame["defaulted"].map(
        lambda v: np.nan if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    )
    frame["defaulted"] = frame["defaulted"].astype(np.float64)
    return frame


def window_bounds(
    frame: pd.DataFrame, window: timedelta, since: datetime | None, until: datetime | None
) -> list[tuple[datetime, datetime]]:
    """Consecutive windows ``[start, start + window)`` from ``since`` (else the first decision's
    day, midnight UTC) until ``until`` (else just after the last decision)."""
    if frame.empty and (since is None or until is None):
        return []
    first = since or frame["created_at"].min().to_pydatetime().replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    last = until or frame["created_at"].max().to_pydatetime() + timedelta(microseconds=1)
    bounds = []
    start = first
    while start < last:
        bounds.append((start, min(start + window, last)))
        start += window
    return bounds


def evaluate_window(
    rows: pd.DataFrame,
    model_name: str,
    model_version: str,
    start: datetime,
    end: datetime,
    info: VersionInfo,
    thresholds: Thresholds,
) -> WindowResult:
    """Every figure and check of one version's decisions in one window (``rows``)."""
    reference = info.reference
    n = len(rows)
    counts = rows["decision"].value_counts()
    known = rows[rows["defaulted"].notna()]
    labels = known["defaulted"].to_numpy(dtype=np.float64).astype(int)
    probabilities = known["probability_of_default"].to_numpy(dtype=np.float64)
    result = WindowResult(
        model_name=model_name,
        model_version=model_version,
        start=start,
        end=end,
        applications=n,
        approve_rate=counts.get("approve", 0) / n if n else math.nan,
        review_rate=counts.get("review", 0) / n if n else math.nan,
        decline_rate=counts.get("decline", 0) / n if n else math.nan,
        outcomes=len(known),
        outcomes_by_decision={k: int(v) for k, v in known["decision"].value_counts().items()},
        defaults=int(labels.sum()),
    )
    defaults, repaid = int(labels.sum()), int((labels == 0).sum())
    if min(defaults, repaid) >= thresholds.min_per_class:
        auc, low, high = auc_interval(labels, probabilities)
        result.auc, result.auc_interval = auc, (low, high)
        result.gini, result.gini_interval = 2 * auc - 1, (2 * low - 1, 2 * high - 1)
        result.ks = ks_statistic(labels, probabilities)
        result.ks_interval = bootstrap_interval(
            labels, probabilities, ks_statistic, thresholds.bootstrap_resamples
        )
    if len(known) >= max(thresholds.min_outcomes, 1):
        result.expected_defaults = float(probabilities.sum())
        result.observed_to_expected = observed_to_expected(labels, probabilities)
        result.bands = band_calibration(known["risk_band"].to_numpy(), labels, probabilities)
    if reference is not None and n >= MIN_PSI_SAMPLE:
        # The service's own PSI (models.reference), over this window instead of its recent one.
        result.feature_psi = reference.feature_psi(rows["inputs"].tolist())
        result.score_psi = reference.score_psi(rows["probability_of_default"].tolist())
    result.reference_auc, result.reference_auc_on = reference_auc(
        info, lending_cutoff(rows), thresholds.min_per_class
    )
    result.checks = checks(result, thresholds)
    return result


def checks(result: WindowResult, t: Thresholds) -> dict[str, Status]:
    """ok / watch / breach (n/a without enough data) for discrimination (against
    ``result.reference_auc``), calibration, stability."""
    out: dict[str, Status] = {}
    if result.auc is None or result.reference_auc is None:
        out["discrimination"] = "n/a"
    else:
        drop = result.reference_auc - result.auc
        out["discrimination"] = (
            "breach" if drop > t.auc_drop_breach else "watch" if drop > t.auc_drop_watch else "ok"
        )
    oe = result.observed_to_expected
    if oe is None or math.isnan(oe):
        out["calibration"] = "n/a"
    else:
        out["calibration"] = (
            "breach"
            if not t.oe_breach[0] <= oe <= t.oe_breach[1]
            else "watch"
            if not t.oe_watch[0] <= oe <= t.oe_watch[1]
            else "ok"
        )
    psi = result.max_psi
    out["stability"] = (
        "n/a"
        if psi is None
        else "breach"
        if psi > t.psi_breach
        else "watch"
        if psi > t.psi_watch
        else "ok"
    )
    return out


@dataclass
class VersionReport:
    """One model version over the period: its windows, the whole period, and the worst status."""

    model_name: str
    model_version: str
    test_auc: float | None
    windows: list[WindowResult]
    total: WindowResult

    @property
    def status(self) -> dict[str, Status]:
        names = ("discrimination", "calibration", "stability")
        return {
            name: worst([w.checks[name] for w in [*self.windows, self.total]]) for name in names
        }

    @property
    def overall(self) -> Status:
        return worst(list(self.status.values()))


@dataclass(frozen=True)
class VersionInfo:
    """What the monitor needs of a registered version: its training reference, its test AUC,
    and its test split's probabilities (float64) and 0/1 outcomes when the run saved them."""

    reference: TrainingReference | None
    test_auc: float | None
    test_scores: tuple[np.ndarray, np.ndarray] | None = None


def lending_cutoff(rows: pd.DataFrame) -> float | None:
    """The decline threshold the window's decisions were made under (the most common one when
    the policy changed within it), from each decision's recorded policy; None for decisions
    recorded before policies were (audit revision 0003)."""
    if "policy" not in rows:
        return None
    cutoffs = [p.get("decline_at") for p in rows["policy"] if isinstance(p, dict)]
    cutoffs = [c for c in cutoffs if isinstance(c, int | float)]
    return float(pd.Series(cutoffs).mode().iloc[0]) if cutoffs else None


def reference_auc(
    info: VersionInfo, cutoff: float | None, min_per_class: int
) -> tuple[float | None, str]:
    """The AUC a window's AUC is held to, and what it was measured on.

    Outcomes exist only for loans that were lent, the less risky applicants, whose AUC is lower
    than everyone's even when nothing has changed (900 credit_data applicants: 0.822 on all,
    0.707 on the 605 not declined). So the reference is the version's AUC on its test applicants
    below the decline threshold the window was decided with, when the run saved its test scores
    and that subset has ``min_per_class`` of each outcome; else the test AUC on everyone.
    """
    if info.test_scores is not None and cutoff is not None:
        p, y = info.test_scores
        lent = p < cutoff
        if min(int(y[lent].sum()), int((y[lent] == 0).sum())) >= min_per_class:
            return (
                float(roc_auc_score(y[lent], p[lent])),
                f"test applicants below the decline threshold {cutoff:g}",
            )
    return info.test_auc, "all test applicants"


def backtest(
    frame: pd.DataFrame,
    window: timedelta,
    since: datetime | None,
    until: datetime | None,
    version_info: Callable[[str, str], VersionInfo],
    thresholds: Thresholds,
) -> list[VersionReport]:
    """One :class:`VersionReport` per (model name, version) in ``frame`` (:func:`read_decisions`);
    ``version_info(name, version)`` gives what the registry knows of it."""
    bounds = window_bounds(frame, window, since, until)
    reports = []
    for (name, version), rows in frame.groupby(["model_name", "model_version"], sort=True):
        info = version_info(str(name), str(version))
        windows = []
        for start, end in bounds:
            inside = rows[(rows["created_at"] >= start) & (rows["created_at"] < end)]
            if len(inside):
                windows.append(
                    evaluate_window(inside, str(name), str(version), start, end, info, thresholds)
                )
        total = evaluate_window(
            rows,
            str(name),
            str(version),
            bounds[0][0] if bounds else datetime.now(UTC),
            bounds[-1][1] if bounds else datetime.now(UTC),
            info,
            thresholds,
        )
        reports.append(VersionReport(str(name), str(version), info.test_auc, windows, total))
    return reports


def registry_info(name: str, version: str) -> VersionInfo:
    """A registered version's training reference, test AUC and test scores, through
    :func:`models.registered.load_registered` and its run's artifacts. Raises
    ``RegistryError``."""
    import tempfile

    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    from models.registered import TEST_SCORES_ARTIFACT, load_registered

    found = load_registered(name, version=version)
    scores = None
    if found.run_id is not None:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = download_artifacts(
                    run_id=found.run_id, artifact_path=TEST_SCORES_ARTIFACT, dst_path=tmp
                )
                frame = pd.read_parquet(path)
            except (MlflowException, OSError):
                frame = None  # a run from before test scores were saved
        if frame is not None:
            scores = (
                frame["probability_of_default"].to_numpy(dtype=np.float64),
                frame["defaulted"].to_numpy(dtype=np.int64),
            )
    return VersionInfo(found.risk_model.reference, found.metrics.get("test_roc_auc"), scores)


def as_mapping(result: WindowResult) -> Mapping[str, Any]:
    """The figures of one window as flat MLflow metric names and values (finite ones only)."""
    values: dict[str, float | None] = {
        "applications": result.applications,
        "approve_rate": result.approve_rate,
        "review_rate": result.review_rate,
        "decline_rate": result.decline_rate,
        "outcomes": result.outcomes,
        "defaults": result.defaults,
        "auc": result.auc,
        "reference_auc": result.reference_auc,
        "gini": result.gini,
        "ks": result.ks,
        "observed_to_expected": result.observed_to_expected,
        "score_psi": result.score_psi,
        "max_psi": result.max_psi,
    }
    values |= {f"{FEATURE_PSI_PREFIX}{k}": v for k, v in result.feature_psi.items()}
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}
