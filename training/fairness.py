"""Outcomes by protected group: the fair-lending table logged with every training run.

Protected columns (age, marital status, ...) are never model inputs; they are read from the raw
rows of the test split only to report, per group, the observed default rate, the mean predicted
probability and the approval rate at the operating threshold.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

# Age bands as commonly reported in credit-decision reviews; the last band is open-ended.
AGE_BAND_EDGES = (18, 25, 35, 45, 55, 65)
MISSING_GROUP = "(missing)"
FAIRNESS_COLUMNS = [
    "attribute",
    "group",
    "rows",
    "observed_default_rate",
    "mean_predicted_probability",
    "approval_rate",
    "approval_ratio_to_highest",
]


def is_age_column(name: str) -> bool:
    return name.strip().lower() == "age" or name.strip().lower().startswith("age_")


def age_bands(values: pd.Series) -> pd.Series:
    """Label ages with bands such as ``25-34`` and ``65+``; missing ages get their own group."""
    numbers = pd.to_numeric(values, errors="coerce")
    edges = list(AGE_BAND_EDGES)
    labels = [f"<{edges[0]}"]
    labels += [f"{low}-{high - 1}" for low, high in itertools.pairwise(edges)]
    labels += [f"{edges[-1]}+"]
    bands = pd.cut(numbers, bins=[-np.inf, *edges, np.inf], labels=labels, right=False)
    return bands.astype(object).where(numbers.notna(), MISSING_GROUP)


def quartile_bands(values: pd.Series) -> pd.Series:
    """Numeric protected columns other than age are reported by quartile of the reported rows."""
    numbers = pd.to_numeric(values, errors="coerce")
    observed = numbers.dropna()
    if observed.nunique() < 4:
        return numbers.astype(object).where(numbers.notna(), MISSING_GROUP).astype(str)
    edges = np.unique(np.quantile(observed, [0.0, 0.25, 0.5, 0.75, 1.0]))
    bands = pd.cut(numbers, bins=edges, include_lowest=True, duplicates="drop")
    return bands.astype(str).where(numbers.notna(), MISSING_GROUP)


def group_labels(values: pd.Series, name: str) -> pd.Series:
    """The reporting group of each row for one protected column."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return age_bands(values) if is_age_column(name) else quartile_bands(values)
    return values.astype(object).where(values.notna(), MISSING_GROUP).astype(str)


def fairness_table(
    rows: pd.DataFrame,
    y_true: np.ndarray,
    probability: np.ndarray,
    threshold: float,
    protected: list[str] | tuple[str, ...],
) -> pd.DataFrame:
    """One line per (protected column, group), with counts so that small groups are visible.

    ``approval_ratio_to_highest`` is the group's approval rate over the best-approved group's: the
    "four-fifths" screen flags ratios below 0.8 for a closer look.
    """
    frame = pd.DataFrame(
        {
            "y": np.asarray(y_true, dtype=np.float64),
            "p": np.asarray(probability, dtype=np.float64),
        },
        index=rows.index,
    )
    frame["approved"] = (frame["p"] < threshold).astype(np.float64)
    lines = []
    for name in protected:
        if name not in rows.columns:
            continue
        groups = group_labels(rows[name], name)
        summary = frame.groupby(groups, sort=True).agg(
            rows=("y", "size"),
            observed_default_rate=("y", "mean"),
            mean_predicted_probability=("p", "mean"),
            approval_rate=("approved", "mean"),
        )
        highest = summary["approval_rate"].max()
        summary["approval_ratio_to_highest"] = (
            summary["approval_rate"] / highest if highest > 0 else np.nan
        )
        summary = summary.reset_index(names="group")
        summary.insert(0, "attribute", name)
        lines.append(summary)
    if not lines:
        return pd.DataFrame(columns=FAIRNESS_COLUMNS)
    table = pd.concat(lines, ignore_index=True)[FAIRNESS_COLUMNS]
    table["rows"] = table["rows"].astype(int)
    return table
