"""The monitor's outputs: a markdown report, a figure of AUC and O/E over windows, an MLflow run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from monitoring.backtest import SELECTION_NOTE, Thresholds, VersionReport, WindowResult, as_mapping
from monitoring.compare import Comparison
from service.backtests import (
    BACKTEST_EXPERIMENT,
    CHECK_TAG_PREFIX,
    NAME_TAG,
    STATUS_TAG,
    TOTAL_PREFIX,
    VERSION_TAG,
)


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(value: float | None, bounds: tuple[float, float] | None) -> str:
    if value is None or bounds is None:
        return "-"
    return f"{value:.3f} [{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _window_line(w: WindowResult, label: str) -> str:
    return (
        f"| {label} | {w.applications} | {_f(w.approve_rate, 2)} / {_f(w.review_rate, 2)} / "
        f"{_f(w.decline_rate, 2)} | {w.outcomes} ({w.defaults} defaulted) | "
        f"{_interval(w.auc, w.auc_interval)} | {_interval(w.gini, w.gini_interval)} | "
        f"{_interval(w.ks, w.ks_interval)} | {_f(w.observed_to_expected)} | {_f(w.max_psi)} | "
        f"{w.checks['discrimination']} / {w.checks['calibration']} / {w.checks['stability']} |"
    )


def markdown(report: VersionReport, thresholds: Thresholds) -> str:
    """The report of one version: status, the selection note, per-window table, calibration per
    band and PSI per input over the whole period."""
    t = thresholds
    lines = [
        f"# Monitoring: {report.model_name} version {report.model_version}",
        "",
        f"**Overall: {report.overall}** - "
        + ", ".join(f"{k}: {v}" for k, v in report.status.items()),
        "",
        f"> {SELECTION_NOTE}",
        "",
        f"Test AUC at training: {_f(report.test_auc)}; discrimination is held to "
        f"{_f(report.total.reference_auc)}, the AUC on {report.total.reference_auc_on} "
        "(like for like: outcomes exist for lent loans only). Thresholds: AUC drop watch > "
        f"{t.auc_drop_watch}, breach > {t.auc_drop_breach}; O/E watch outside {t.oe_watch}, "
        f"breach outside {t.oe_breach}; PSI watch > {t.psi_watch}, breach > {t.psi_breach}.",
        "",
        "| window | applications | approve / review / decline | outcomes | AUC [95% CI] | "
        "Gini | KS | O/E | max PSI | discrimination / calibration / stability |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in report.windows:
        lines.append(_window_line(w, f"{w.start:%Y-%m-%d} to {w.end:%Y-%m-%d}"))
    lines.append(_window_line(report.total, "**whole period**"))
    total = report.total
    lines += ["", "## Calibration per risk band (whole period, loans with an outcome)", ""]
    if total.bands:
        lines += [
            "| band | loans | defaults | predicted rate | observed rate | binomial p |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {b.band} | {b.loans} | {b.defaults} | {b.predicted_rate:.3f} | "
            f"{b.observed_rate:.3f} | {b.p_value:.3g} |"
            for b in total.bands
        ]
        lines.append(
            f"\nExpected defaults {total.expected_defaults:.1f}, observed {total.defaults}: "
            f"O/E {_f(total.observed_to_expected)}."
        )
    else:
        lines.append(f"Fewer than {t.min_outcomes} outcomes: not assessed.")
    lines += ["", "## Stability (whole period, every decision) against the training reference", ""]
    if total.score_psi is None:
        lines.append("No training reference, or fewer than 50 decisions: not assessed.")
    else:
        lines += ["| input | PSI |", "|---|---|", f"| (score) | {total.score_psi:.3f} |"]
        lines += [
            f"| {k} | {v:.3f} |"
            for k, v in sorted(total.feature_psi.items(), key=lambda kv: -kv[1])
        ]
    return "\n".join(lines) + "\n"


def compare_markdown(c: Comparison) -> str:
    """The champion-challenger evidence as markdown."""
    lines = [
        f"# {c.model_name}: champion version {c.champion} against challenger {c.challenger}",
        "",
        f"> {SELECTION_NOTE} Applicants declined by the version that was serving have no "
        "outcome, so a swap set's observed default rate covers only those it approved.",
        "",
        f"Both scored: {c.both_scored}; with an outcome: {c.with_outcome} "
        f"({c.defaults} defaulted).",
        "",
    ]
    if c.test is None:
        lines.append("AUC comparison: not possible without both defaulted and repaid outcomes.")
    else:
        x = c.test
        lines += [
            f"AUC champion {x.auc_first:.4f}, challenger {x.auc_second:.4f}; difference "
            f"(challenger - champion) {x.difference:+.4f} [95% CI {x.low:+.4f}, {x.high:+.4f}], "
            f"DeLong z = {x.z:.2f}, two-sided p = {x.p_value:.3g}.",
        ]
    lines += [
        "",
        "| version | mean predicted PD | observed default rate | O/E |",
        "|---|---|---|---|",
        f"| champion {c.champion} | {_f(c.champion_predicted_rate)} | {_f(c.observed_rate)} | "
        f"{_f(c.champion_observed_to_expected)} |",
        f"| challenger {c.challenger} | {_f(c.challenger_predicted_rate)} | "
        f"{_f(c.observed_rate)} | {_f(c.challenger_observed_to_expected)} |",
        "",
        "| swap set | applicants | with outcome | defaults | observed default rate |",
        "|---|---|---|---|---|",
    ]
    for s in c.swaps:
        other = c.challenger if s.approved_by == c.champion else c.champion
        lines.append(
            f"| approved by {s.approved_by}, declined by {other} | {s.applicants} | "
            f"{s.with_outcome} | {s.defaults} | {_f(s.observed_default_rate)} |"
        )
    return "\n".join(lines) + "\n"


def figure(report: VersionReport, path: Path) -> None:
    """AUC (with its interval) and O/E per window, one panel each, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = [w.start for w in report.windows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    auc = [w.auc if w.auc is not None else float("nan") for w in report.windows]
    low = [w.auc_interval[0] if w.auc_interval else float("nan") for w in report.windows]
    high = [w.auc_interval[1] if w.auc_interval else float("nan") for w in report.windows]
    top.plot(starts, auc, marker="o", label="AUC")
    top.fill_between(starts, low, high, alpha=0.2, label="95% CI (DeLong)")
    if report.test_auc is not None:
        top.axhline(report.test_auc, color="grey", linestyle="--", label="test AUC")
    top.set_ylabel("ROC AUC")
    top.legend(loc="lower left")
    oe = [
        w.observed_to_expected if w.observed_to_expected is not None else float("nan")
        for w in report.windows
    ]
    bottom.plot(starts, oe, marker="o", color="tab:orange")
    bottom.axhline(1.0, color="grey", linestyle="--")
    bottom.set_ylabel("observed / expected defaults")
    bottom.set_xlabel("window start (decision time, UTC)")
    fig.suptitle(f"{report.model_name} v{report.model_version} (approved loans' outcomes only)")
    fig.autofmt_xdate()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def log_run(
    report: VersionReport, thresholds: Thresholds, experiment: str = BACKTEST_EXPERIMENT
) -> str:
    """One MLflow run for one version in ``experiment``, tagged with the model name, version and
    statuses: whole-period figures as metrics, per-window ones at step = window index, the
    figure and the markdown report as artifacts. Returns the run id. The service reads the
    newest run of each version it serves back for /metrics (:mod:`service.backtests`)."""
    import mlflow

    from models.mlflow_flavor import use_tracking

    use_tracking()
    mlflow.set_experiment(experiment)
    with (
        mlflow.start_run(run_name=f"{report.model_name}-v{report.model_version}") as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.set_tags(
            {
                NAME_TAG: report.model_name,
                VERSION_TAG: report.model_version,
                STATUS_TAG: report.overall,
                **{f"{CHECK_TAG_PREFIX}{k}": v for k, v in report.status.items()},
            }
        )
        mlflow.log_metrics({f"{TOTAL_PREFIX}{k}": v for k, v in as_mapping(report.total).items()})
        for step, w in enumerate(report.windows):
            mlflow.log_metrics({f"window_{k}": v for k, v in as_mapping(w).items()}, step=step)
        directory = Path(tmp)
        (directory / "report.md").write_text(markdown(report, thresholds))
        figure(report, directory / "auc_and_oe_over_windows.png")
        mlflow.log_artifacts(str(directory))
        return run.info.run_id
