"""Proxies: how well each model input, alone, predicts each protected attribute.

Protected columns are kept out of the inputs, but an input can stand in for one (a postcode for
ethnicity, years with the employer for age). For every (input, protected attribute) pair this
fits a one-feature model and measures its out-of-fold ROC AUC for every group of the attribute,
one group against the rest. The method and the flag level are explained in docs/fairness.md.

The one-feature model is a lookup table: the input is cut into levels (each category, or one of
``PROXY_BINS`` quantile bins of a numeric input; a missing value is a level of its own) and each
level predicts the group's share among the training-fold rows of that level, shrunk towards the
overall share by ``PROXY_SMOOTHING`` rows. Unlike a logistic regression on the raw value it sees
a U-shaped link, and unlike an in-sample rate it does not reward an input for having many rare
categories: each row is scored by a table fitted on the other ``PROXY_FOLDS - 1`` folds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from training.fairness import MISSING_GROUP, SMALL_GROUP_ROWS, group_labels

# An input whose one-feature AUC for some group reaches this is flagged as a proxy. 0.5 is no
# information. Measured on credit_data's 2672 training rows with the protected columns shuffled
# (20 shuffles, so any association is chance): the highest AUC over all 22 (input, attribute)
# pairs and their groups was 0.52-0.61, 95th percentile 0.61. At 0.65 a flag is not noise on data
# this size; unshuffled, 9 pairs reach it (Expenses and Home for marital status, Seniority for age
# at 0.77-0.78).
PROXY_AUC_FLAG = 0.65
PROXY_FOLDS = 5
PROXY_BINS = 10
# Prior weight, in rows, of the overall group share in a level's estimate.
PROXY_SMOOTHING = 10.0

PROXY_COLUMNS = ["input", "attribute", "auc", "group", "auc_macro", "groups", "rows", "flagged"]


def input_levels(values: pd.Series, kind: str, bins: int = PROXY_BINS) -> np.ndarray:
    """Integer level codes (shape ``(n,)``, int64) of one input for the one-feature model.

    ``kind`` is ``"numeric"`` or ``"categorical"``. Numeric values are cut at their quantiles
    into at most ``bins`` levels (a column with at most ``bins`` distinct values keeps one level
    per value); categories are levels as they are. Missing values share one level of their own.
    """
    if kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.nunique() <= bins:
            codes = pd.factorize(numbers, sort=True)[0]
        else:
            codes = pd.qcut(numbers, q=bins, labels=False, duplicates="drop")
            codes = np.where(numbers.notna(), codes, -1)
    elif kind == "categorical":
        codes = pd.factorize(values.astype(object).where(values.notna(), MISSING_GROUP))[0]
    else:
        raise ValueError(f"input kind must be 'numeric' or 'categorical', not {kind!r}")
    codes = np.asarray(codes, dtype=np.int64)
    return np.where(codes < 0, codes.max(initial=-1) + 1, codes)


def out_of_fold_scores(
    levels: np.ndarray, targets: np.ndarray, folds: np.ndarray, smoothing: float = PROXY_SMOOTHING
) -> np.ndarray:
    """Each row's smoothed share of every target among the other folds' rows at its level.

    ``levels`` (n,) int codes ≥ 0, ``targets`` (n, g) 0/1, ``folds`` (n,) fold numbers. Returns
    (n, g) float64: ``(sum + smoothing · prior) / (count + smoothing)`` where ``sum`` and
    ``count`` are over the rows of the other folds at the row's level and ``prior`` is the
    target's share among those other folds.
    """
    targets = np.asarray(targets, dtype=np.float64)
    width = int(levels.max(initial=0)) + 1
    scores = np.empty_like(targets)
    for fold in np.unique(folds):
        held = folds == fold
        fit = ~held
        counts = np.bincount(levels[fit], minlength=width).astype(np.float64)
        prior = targets[fit].mean(axis=0)
        sums = np.stack(
            [np.bincount(levels[fit], weights=t, minlength=width) for t in targets[fit].T], axis=1
        )
        table = (sums + smoothing * prior) / (counts[:, None] + smoothing)
        scores[held] = table[levels[held]]
    return scores


def proxy_table(
    rows: pd.DataFrame,
    inputs: Mapping[str, str],
    protected: Sequence[str],
    *,
    flag_auc: float = PROXY_AUC_FLAG,
    min_rows: int = SMALL_GROUP_ROWS,
    folds: int = PROXY_FOLDS,
    seed: int = 0,
) -> pd.DataFrame:
    """One line per (input, protected attribute), strongest proxy first.

    ``rows`` holds the raw rows (inputs and protected columns, e.g. the training split);
    ``inputs`` maps each model input to its kind (``{f.name: f.kind for f in
    contract.features}``). Protected values are grouped as in the fairness table (ages in
    bands); rows whose protected value is missing are left out for that attribute, and only
    groups with at least ``min_rows`` rows, and at least ``min_rows`` rows outside them, are
    scored. Columns (``PROXY_COLUMNS``): ``auc`` is the highest one-vs-rest out-of-fold AUC over
    the scored groups and ``group`` that group; ``auc_macro`` their mean; ``groups`` how many were
    scored; ``rows`` the rows used; ``flagged`` is ``auc >= flag_auc``. An attribute with fewer
    than two groups large enough gives no lines. Sorted by ``auc``, highest first.
    """
    lines = []
    for attribute in protected:
        if attribute not in rows.columns:
            continue
        labels = group_labels(rows[attribute], attribute)
        known = (labels != MISSING_GROUP).to_numpy()
        labels = labels[known].astype(str)
        counts = labels.value_counts()
        groups = sorted(
            g for g, n in counts.items() if n >= min_rows and known.sum() - n >= min_rows
        )
        if len(groups) < 2:
            continue
        targets = np.stack([(labels == g).to_numpy() for g in groups], axis=1)
        rng = np.random.default_rng(seed)
        fold_of = rng.permutation(len(labels)) % folds
        for name, kind in inputs.items():
            if name not in rows.columns or name == attribute:
                continue
            levels = input_levels(rows[name][known], kind)
            scores = out_of_fold_scores(levels, targets, fold_of)
            aucs = np.array(
                [roc_auc_score(targets[:, k], scores[:, k]) for k in range(len(groups))]
            )
            best = int(np.argmax(aucs))
            lines.append(
                {
                    "input": name,
                    "attribute": attribute,
                    "auc": float(aucs[best]),
                    "group": groups[best],
                    "auc_macro": float(aucs.mean()),
                    "groups": len(groups),
                    "rows": len(labels),
                    "flagged": bool(aucs[best] >= flag_auc),
                }
            )
    if not lines:
        return pd.DataFrame(columns=PROXY_COLUMNS)
    table = pd.DataFrame(lines, columns=PROXY_COLUMNS)
    return table.sort_values(
        ["auc", "input", "attribute"], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)


def proxy_metrics(table: pd.DataFrame) -> dict[str, float]:
    """``fairness_proxy_auc_max`` and ``fairness_proxies_flagged`` for ``mlflow.log_metrics``;
    empty when ``table`` is (no protected attribute with two groups large enough)."""
    if table.empty:
        return {}
    return {
        "fairness_proxy_auc_max": float(table["auc"].max()),
        "fairness_proxies_flagged": float(table["flagged"].sum()),
    }


def proxy_markdown(table: pd.DataFrame, flag_auc: float = PROXY_AUC_FLAG) -> str:
    """``proxy_table``'s lines as a markdown table for the model card, with one line on how to
    read it; a sentence instead when there is nothing to show."""
    if table.empty:
        return (
            "No proxy check: no protected attribute with at least two groups of "
            f"{SMALL_GROUP_ROWS} rows."
        )
    lines = [
        "| input | protected attribute | AUC | best-predicted group | macro AUC | rows | proxy? |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        lines.append(
            f"| {row.input} | {row.attribute} | {row.auc:.3f} | {row.group} | "
            f"{row.auc_macro:.3f} | {row.rows} | {'**flagged**' if row.flagged else ''} |"
        )
    lines += [
        "",
        "AUC of a one-feature model predicting the group from this input alone (one group against "
        f"the rest, {PROXY_FOLDS}-fold out of fold); 0.5 is no information. Flagged at AUC ≥ "
        f"{flag_auc:.2f}.",
    ]
    return "\n".join(lines)
