"""A search for a less discriminatory alternative (LDA): ``loanrisk lda``.

On the same split as ``loanrisk train`` (same data, seed → same rows, through
:func:`training.stages.prepare.prepare`) and with the same network recipe and fit path
(:func:`training.pipeline.fit_dnn`), this trains the alternatives a fair-lending review would
consider and measures each one's test ROC AUC and lowest adverse impact ratio
(``fairness_air_min``, as :func:`training.fairness.fairness_metrics` defines it):

- ``baseline``: the model as ``loanrisk train`` fits it, at its KS threshold on the validation
  split;
- ``drop <input>``: retrained without one flagged proxy (``training.proxies``, AUC ≥
  ``PROXY_AUC_FLAG``), for each flagged input, and ``drop all flagged`` without all of them;
- ``threshold <t>``: the baseline's scores at a moved operating threshold (no retraining): the
  thresholds at which the validation approval rate is the baseline's plus or minus
  ``THRESHOLD_STEPS``.

Every retrained alternative picks its own threshold as training does (largest KS gap on its
validation scores). One MLflow parent run holds a child run per alternative, the table
(``lda/alternatives.csv`` and ``.md``) and the trade-off figure (``lda/frontier.png``). The
question answered: is there an alternative whose AUC is within ``tolerance`` of the baseline's
and whose AIR is higher?
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from models.mlflow_flavor import use_tracking
from training.data import DataError
from training.evaluate import classification_metrics, ks_threshold
from training.fairness import AIR_SCREEN, fairness_metrics, fairness_table
from training.proxies import PROXY_AUC_FLAG, proxy_table
from training.report import markdown_table
from training.stages.fit import fit_prepared
from training.stages.options import TrainOptions
from training.stages.prepare import Prepared, prepare
from training.train import ensure_experiment

# The AUC a review accepts losing for a higher AIR; 0.005 is about a quarter of the AUC's standard
# error on credit_data's 891 test rows (0.016, Hanley-McNeil), so a smaller loss is noise.
DEFAULT_AUC_TOLERANCE = 0.005
# Moves of the validation approval rate tried for the baseline's threshold.
THRESHOLD_STEPS = (-0.10, -0.05, 0.05, 0.10)

LDA_COLUMNS = [
    "alternative",
    "kind",
    "dropped",
    "threshold",
    "test_roc_auc",
    "fairness_air_min",
    "approval_rate",
    "bad_rate_approved",
    "auc_change",
    "air_change",
    "within_tolerance",
    "less_discriminatory",
]


@dataclass(frozen=True)
class LdaResult:
    """The table of alternatives (``LDA_COLUMNS``, the baseline first), the verdict and where it
    was logged."""

    table: pd.DataFrame
    tolerance: float
    conclusion: str
    found: str | None  # the alternative named in the conclusion, or None
    run_id: str
    experiment_id: str
    tracking_uri: str
    seconds: float


def without(prepared: Prepared, names: tuple[str, ...]) -> Prepared:
    """The same data and split with the inputs ``names`` moved to the contract's dropped columns."""
    contract = prepared.contract
    kept = tuple(spec for spec in contract.features if spec.name not in names)
    contract = replace(contract, features=kept, dropped=(*contract.dropped, *names))
    return replace(prepared, dataset=replace(prepared.dataset, contract=contract))


def measure(prepared: Prepared, p_test: np.ndarray, threshold: float) -> dict[str, float]:
    """Test ROC AUC, approval and bad rates at ``threshold``, and the ``fairness_*`` metrics."""
    y_test = prepared.y("test")
    decision = classification_metrics(y_test, p_test, threshold)
    table = fairness_table(
        prepared.dataset.frame.iloc[prepared.split.test],
        y_test,
        p_test,
        threshold,
        prepared.contract.protected,
    )
    return {
        "test_roc_auc": decision["roc_auc"],
        "test_approval_rate": decision["approval_rate"],
        "test_bad_rate_approved": decision["bad_rate_approved"],
        **fairness_metrics(table),
    }


def moved_thresholds(p_validation: np.ndarray, threshold: float) -> list[float]:
    """Thresholds at which the validation approval rate (share below the threshold) moves by each
    of ``THRESHOLD_STEPS``, kept within 5 %-95 % approval; distinct and sorted."""
    approved = float(np.mean(p_validation < threshold))
    targets = [approved + step for step in THRESHOLD_STEPS if 0.05 <= approved + step <= 0.95]
    values = {float(np.quantile(p_validation, target)) for target in targets}
    return sorted(values - {threshold})


@dataclass(frozen=True)
class _Line:
    name: str
    kind: str
    dropped: tuple[str, ...]
    threshold: float
    metrics: dict[str, float]
    fit_seconds: float = 0.0


@dataclass(frozen=True)
class _Scores:
    """One fitted alternative's probabilities (float64, one per row), its KS threshold on the
    validation split, and the seconds the fit took."""

    p_validation: np.ndarray
    p_test: np.ndarray
    threshold: float
    seconds: float


def fit_and_score(prepared: Prepared, options: TrainOptions) -> _Scores:
    """Fit the DNN pipeline as ``loanrisk train`` does (same rows, recipe, seed, calibration) on
    the inputs of ``prepared.contract``; score the validation and test rows."""
    started = time.perf_counter()
    dnn = fit_prepared(prepared, options, log_to_mlflow=False)
    seconds = time.perf_counter() - started
    model = dnn.risk_model
    p_validation = model.score_frame(prepared.rows("validation"))
    return _Scores(
        p_validation=p_validation,
        p_test=model.score_frame(prepared.rows("test")),
        threshold=ks_threshold(prepared.y("validation"), p_validation),
        seconds=seconds,
    )


def search(
    options: TrainOptions,
    tolerance: float = DEFAULT_AUC_TOLERANCE,
    say: Callable[[str], None] | None = None,
) -> LdaResult:
    """Train and measure the alternatives, log them to MLflow, and answer the LDA question.

    Raises DataError when the data is unusable or declares no protected column (there is no AIR
    to improve), before anything is logged.
    """
    say = say or (lambda _message: None)
    started = time.perf_counter()
    prepared = prepare(options)
    if not prepared.contract.protected:
        raise DataError(
            "no protected columns declared: there is no adverse impact ratio to improve "
            "(declare them under `protected` in the schema file)"
        )
    proxies = proxy_table(
        prepared.dataset.frame.iloc[prepared.split.train],
        {spec.name: spec.kind for spec in prepared.contract.features},
        prepared.contract.protected,
        seed=options.seed,
    )
    flagged = list(dict.fromkeys(proxies.loc[proxies["flagged"], "input"]))
    uri = use_tracking()
    experiment_id = ensure_experiment(options.experiment)
    lines: list[_Line] = []
    say(f"baseline: {prepared.summary()}")
    base = fit_and_score(prepared, options)
    lines.append(
        _Line(
            "baseline",
            "baseline",
            (),
            base.threshold,
            measure(prepared, base.p_test, base.threshold),
            base.seconds,
        )
    )
    drops = [(name,) for name in flagged]
    if 1 < len(flagged) < len(prepared.contract.features):
        drops.append(tuple(flagged))
    for names in drops:
        if len(names) == len(prepared.contract.features):
            continue  # the only input: a model needs at least one
        label = f"drop {names[0]}" if len(names) == 1 else "drop all flagged"
        say(label)
        reduced = without(prepared, names)
        alternative = fit_and_score(reduced, options)
        lines.append(
            _Line(
                label,
                "drop",
                names,
                alternative.threshold,
                measure(reduced, alternative.p_test, alternative.threshold),
                alternative.seconds,
            )
        )
    for moved in moved_thresholds(base.p_validation, base.threshold):
        lines.append(
            _Line(
                f"threshold {moved:.3f}",
                "threshold",
                (),
                moved,
                measure(prepared, base.p_test, moved),
            )
        )
    table = lda_table(lines, tolerance)
    conclusion, found = verdict(table, tolerance)
    seconds = time.perf_counter() - started
    with mlflow.start_run(run_name=f"lda {prepared.dataset.path.stem}") as run:
        log_search(prepared, options, proxies, lines, table, tolerance, conclusion, seconds)
    return LdaResult(
        table=table,
        tolerance=tolerance,
        conclusion=conclusion,
        found=found,
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        tracking_uri=uri,
        seconds=seconds,
    )


def lda_table(lines: list[_Line], tolerance: float) -> pd.DataFrame:
    """One line per alternative (``LDA_COLUMNS``), the baseline first. ``auc_change`` and
    ``air_change`` are against the baseline; ``within_tolerance`` is ``auc_change >=
    -tolerance``; ``less_discriminatory`` is within the tolerance with a higher AIR. An AIR that
    could not be measured is NaN and never higher."""
    base = lines[0].metrics
    base_auc, base_air = base["test_roc_auc"], base.get("fairness_air_min", np.nan)
    rows = []
    for line in lines:
        auc = line.metrics["test_roc_auc"]
        air = line.metrics.get("fairness_air_min", np.nan)
        within = bool(auc - base_auc >= -tolerance - 1e-12)
        rows.append(
            {
                "alternative": line.name,
                "kind": line.kind,
                "dropped": ", ".join(line.dropped),
                "threshold": line.threshold,
                "test_roc_auc": auc,
                "fairness_air_min": air,
                "approval_rate": line.metrics["test_approval_rate"],
                "bad_rate_approved": line.metrics["test_bad_rate_approved"],
                "auc_change": auc - base_auc,
                "air_change": air - base_air,
                "within_tolerance": within,
                "less_discriminatory": bool(
                    line.kind != "baseline" and within and np.isfinite(air) and air > base_air
                ),
            }
        )
    return pd.DataFrame(rows, columns=LDA_COLUMNS)


def verdict(table: pd.DataFrame, tolerance: float) -> tuple[str, str | None]:
    """The closing sentence and the alternative it names, or None when no alternative is less
    discriminatory (test AUC within ``tolerance`` of the baseline's, higher AIR).

    A retrained alternative is named before a threshold move: a move keeps the AUC by
    construction and buys its AIR with a different approval rate and default rate among those
    approved, which the sentence states for whichever it names. Within each kind, the highest AIR
    wins, then the higher AUC; a qualifying threshold move is mentioned after a retrained one.
    """
    base = table.iloc[0]
    candidates = table[table["less_discriminatory"]].sort_values(
        ["fairness_air_min", "test_roc_auc"], ascending=False, kind="stable"
    )
    baseline_text = (
        f"baseline test AUC {base['test_roc_auc']:.4f}, fairness_air_min "
        f"{base['fairness_air_min']:.3f}, approval rate {base['approval_rate']:.3f}, default "
        f"rate among approved {base['bad_rate_approved']:.3f}"
    )
    if candidates.empty:
        return (
            f"no less discriminatory alternative: none of the {len(table) - 1} alternatives has a "
            f"test AUC within {tolerance:g} of the baseline's and a higher AIR ({baseline_text})",
            None,
        )

    def described(row: pd.Series) -> str:
        return (
            f"{row['alternative']} (test AUC {row['test_roc_auc']:.4f}, {row['auc_change']:+.4f}; "
            f"fairness_air_min {row['fairness_air_min']:.3f}, {row['air_change']:+.3f}; approval "
            f"rate {row['approval_rate']:.3f}, default rate among approved "
            f"{row['bad_rate_approved']:.3f})"
        )

    retrained = candidates[candidates["kind"] != "threshold"]
    moves = candidates[candidates["kind"] == "threshold"]
    best = retrained.iloc[0] if not retrained.empty else moves.iloc[0]
    text = f"less discriminatory alternative found: {described(best)}"
    if not retrained.empty and not moves.empty:
        text += f"; a threshold move also qualifies: {described(moves.iloc[0])}"
    others = [name for name in candidates["alternative"] if name != best["alternative"]]
    if len(others) > (0 if retrained.empty or moves.empty else 1):
        text += f"; all that qualify: {', '.join(map(str, candidates['alternative']))}"
    return f"{text}; {baseline_text}", str(best["alternative"])


def log_search(
    prepared: Prepared,
    options: TrainOptions,
    proxies: pd.DataFrame,
    lines: list[_Line],
    table: pd.DataFrame,
    tolerance: float,
    conclusion: str,
    seconds: float,
) -> None:
    """Log the parent run (parameters, verdict, table, figure) and one child run per
    alternative with the same metric names, so the MLflow UI compares them."""
    parent = mlflow.active_run()
    assert parent is not None
    found = bool(table["less_discriminatory"].any())
    mlflow.set_tags(
        {
            "loanrisk.stage": "lda",
            "loanrisk.data_file": prepared.dataset.path.name,
            "loanrisk.lda": conclusion,
        }
    )
    mlflow.log_params(
        {
            **prepared.config.to_params(),
            "seed": options.seed,
            "data_file": prepared.dataset.path.name,
            "data_sha256": prepared.dataset.sha256,
            "protected_columns": ",".join(prepared.contract.protected),
            "auc_tolerance": tolerance,
            "proxy_auc_flag": PROXY_AUC_FLAG,
            "flagged_proxies": ",".join(dict.fromkeys(proxies.loc[proxies["flagged"], "input"]))
            or "none",
        }
    )
    base = table.iloc[0]
    mlflow.log_metrics(
        {
            "baseline_test_roc_auc": float(base["test_roc_auc"]),
            **(
                {"baseline_fairness_air_min": float(base["fairness_air_min"])}
                if np.isfinite(base["fairness_air_min"])
                else {}
            ),
            "lda_found": float(found),
            "lda_alternatives": float(len(table) - 1),
            "lda_seconds": seconds,
        }
    )
    for line, row in zip(lines, table.itertuples(index=False), strict=True):
        with mlflow.start_run(run_name=line.name, nested=True):
            mlflow.set_tags(
                {
                    "loanrisk.stage": "lda",
                    "loanrisk.lda_kind": line.kind,
                    "loanrisk.parent": parent.info.run_id,
                }
            )
            mlflow.log_params(
                {
                    "kind": line.kind,
                    "dropped": ", ".join(line.dropped) or "none",
                    "threshold": line.threshold,
                }
            )
            mlflow.log_metrics(
                {
                    **line.metrics,
                    "operating_threshold": line.threshold,
                    "auc_change": float(row.auc_change),
                    "within_tolerance": float(row.within_tolerance),
                    "less_discriminatory": float(row.less_discriminatory),
                    **({"fit_seconds": line.fit_seconds} if line.kind != "threshold" else {}),
                }
            )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        table.to_csv(root / "alternatives.csv", index=False)
        (root / "alternatives.md").write_text(
            markdown_table(table, ".4f") + "\n\n" + conclusion + "\n"
        )
        proxies.to_csv(root / "proxies.csv", index=False)
        frontier_plot(table, tolerance, root / "frontier.png")
        mlflow.log_artifacts(str(root), artifact_path="lda")


def frontier_plot(table: pd.DataFrame, tolerance: float, path: Path) -> Path:
    """AUC (x) against AIR (y) for every alternative, the baseline's tolerance band shaded, the
    four-fifths screen dashed and the non-dominated alternatives joined: the trade-off frontier."""
    from training.plots import _save, plt

    figure, axes = plt.subplots(figsize=(7.5, 5.5))
    base = table.iloc[0]
    auc = table["test_roc_auc"].to_numpy(dtype=float)
    air = table["fairness_air_min"].to_numpy(dtype=float)
    low = min(np.nanmin(auc), base["test_roc_auc"] - tolerance) - 0.005
    high = np.nanmax(auc) + 0.005
    axes.axvspan(base["test_roc_auc"] - tolerance, high, color="#d9ead3", alpha=0.6, lw=0)
    axes.axhline(AIR_SCREEN, color="#999999", ls="--", lw=1)
    axes.axhline(base["fairness_air_min"], color="#4a86e8", ls=":", lw=1)
    colours = {"baseline": "#000000", "drop": "#e69138", "threshold": "#4a86e8"}
    for kind, colour in colours.items():
        chosen = (table["kind"] == kind).to_numpy()
        axes.scatter(auc[chosen], air[chosen], color=colour, label=kind, zorder=3, s=36)
    for name, x, y in zip(table["alternative"], auc, air, strict=True):
        if np.isfinite(x) and np.isfinite(y):
            axes.annotate(str(name), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
    finite = np.isfinite(auc) & np.isfinite(air)
    order = np.lexsort((-air[finite], -auc[finite]))  # by AUC, then AIR, highest first
    xs, ys = auc[finite][order], air[finite][order]
    front_x, front_y, best = [], [], -np.inf
    for x, y in zip(xs, ys, strict=True):
        if y > best:
            front_x.append(x)
            front_y.append(y)
            best = y
    axes.plot(front_x, front_y, color="#6aa84f", lw=1.5, label="frontier", zorder=2)
    axes.set_xlim(low, high)
    axes.set_xlabel("test ROC AUC")
    axes.set_ylabel("fairness_air_min (lowest adverse impact ratio)")
    axes.set_title(
        f"Less discriminatory alternatives: shaded, AUC within {tolerance:g} of the baseline"
    )
    axes.legend(loc="lower left", fontsize=8)
    return _save(figure, path)
