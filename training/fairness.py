"""Outcomes by protected group: the fair-lending table, metrics, screen and gate of a training run.

Protected columns (age, marital status, ...) are never model inputs; they are read from the raw
rows of the test split only to report, per group, the observed default rate, the mean predicted
probability, the approval rate at the operating threshold, the adverse impact ratio (AIR) with a
confidence interval, and the standardised mean difference of the predicted probabilities.

The methods, constants and the reasons for them are in docs/fairness.md.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

# Age bands as commonly reported in credit-decision reviews; the last band is open-ended.
AGE_BAND_EDGES = (18, 25, 35, 45, 55, 65)
MISSING_GROUP = "(missing)"
# A group with fewer test rows than this is flagged ``small_group``: it is listed everywhere with
# its numbers, but it is neither the reference of the AIR nor counted in ``fairness_air_min`` (and
# so cannot trip the gate). At 30 rows and an approval rate near 0.7, one applicant moves the rate
# by 0.033 and the 95 % interval of its AIR against a 300-row reference with the same rate is
# 0.78-1.28: noise, not evidence.
SMALL_GROUP_ROWS = 30
# The four-fifths screen (US Uniform Guidelines, 29 CFR 1607.4(D)): an AIR below it calls for
# review.
AIR_SCREEN = 0.80
# Two-sided confidence level of the AIR interval.
CONFIDENCE = 0.95
# The promotion gate on ``fairness_air_min`` is off unless asked for (``--min-air``): see
# docs/fairness.md, "Why the gate is off by default".
DEFAULT_MIN_AIR: float | None = None

FAIRNESS_COLUMNS = [
    "attribute",
    "group",
    "rows",
    "observed_default_rate",
    "mean_predicted_probability",
    "approval_rate",
    "approval_ratio_to_highest",
    "small_group",
    "reference_group",
    "air",
    "air_ci_low",
    "air_ci_high",
    "smd",
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


def adverse_impact_ratio(
    approved: int,
    rows: int,
    reference_approved: int,
    reference_rows: int,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """A group's approval rate over the reference group's, with Katz's log-ratio interval.

    ``approved``/``rows`` and ``reference_approved``/``reference_rows`` are counts of two disjoint
    groups. Returns ``(ratio, low, high)``; all NaN when the reference approves nobody (the ratio is
    undefined) or a group is empty. The interval is ``exp(log r ± z·se)`` with
    ``se² = 1/a - 1/n + 1/a₀ - 1/n₀`` (Katz et al. 1978). When the group approves nobody the
    ratio is 0, the log is undefined: the upper bound is computed with 0.5 added to every cell of
    the 2x2 table (Haldane) and the lower bound is 0.
    """
    if rows <= 0 or reference_rows <= 0 or reference_approved <= 0:
        return math.nan, math.nan, math.nan
    z = float(norm.ppf(0.5 + confidence / 2))
    ratio = (approved / rows) / (reference_approved / reference_rows)
    a, n, a0, n0 = float(approved), float(rows), float(reference_approved), float(reference_rows)
    if approved == 0:
        a, n, a0, n0 = a + 0.5, n + 1.0, a0 + 0.5, n0 + 1.0
    log_ratio = math.log((a / n) / (a0 / n0))
    se = math.sqrt(max(1 / a - 1 / n + 1 / a0 - 1 / n0, 0.0))
    low = 0.0 if approved == 0 else math.exp(log_ratio - z * se)
    return ratio, low, math.exp(log_ratio + z * se)


def standardised_mean_difference(group: np.ndarray, rest: np.ndarray) -> float:
    """Cohen's d of two samples: (mean of ``group`` - mean of ``rest``) / pooled SD.

    The pooled SD is ``sqrt((SS_group + SS_rest) / (n_group + n_rest - 2))`` with SS the sums of
    squared deviations from each sample's own mean. Positive: ``group`` scores higher (for
    predicted default probabilities, riskier). NaN when either sample is empty, there are fewer
    than three values, or every value is the same.
    """
    group = np.asarray(group, dtype=np.float64)
    rest = np.asarray(rest, dtype=np.float64)
    if group.size == 0 or rest.size == 0 or group.size + rest.size < 3:
        return math.nan
    # Checked on the values, not on the pooled SD: the means of equal values can differ in the
    # last bit, which gives a pooled SD of 1e-17 and a d of order 1.
    if np.ptp(np.concatenate([group, rest])) == 0.0:
        return math.nan
    squares = float(((group - group.mean()) ** 2).sum() + ((rest - rest.mean()) ** 2).sum())
    pooled = math.sqrt(squares / (group.size + rest.size - 2))
    if pooled == 0.0:  # each sample constant, the two different: no spread to scale by
        return math.nan
    return float((group.mean() - rest.mean()) / pooled)


def _reference(summary: pd.DataFrame, min_rows: int) -> str:
    """The most-approved group with at least ``min_rows`` rows, or of all groups if none has.

    Ties go to the larger group, then to the first label in sorted order.
    """
    eligible = summary[summary["rows"] >= min_rows]
    if eligible.empty:
        eligible = summary
    ranked = eligible.sort_values(
        ["approval_rate", "rows", "group"], ascending=[False, False, True], kind="stable"
    )
    return str(ranked["group"].iloc[0])


def fairness_table(
    rows: pd.DataFrame,
    y_true: np.ndarray,
    probability: np.ndarray,
    threshold: float,
    protected: Sequence[str],
    *,
    min_rows: int = SMALL_GROUP_ROWS,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """One line per (protected column, group), with counts so that small groups are visible.

    ``rows`` are the raw rows of a split (protected columns included), aligned with ``y_true``
    (0/1) and ``probability`` (predicted default probability); an applicant is approved when the
    probability is below ``threshold``. Protected columns absent from ``rows`` are skipped. A
    missing value is its own group, ``(missing)``; numeric ages are reported in bands, other
    numeric columns by quartile. Columns (``FAIRNESS_COLUMNS``):

    - ``approval_ratio_to_highest``: approval rate over the best-approved group's, of any size;
    - ``small_group``: fewer than ``min_rows`` rows;
    - ``reference_group``: the best-approved group with at least ``min_rows`` rows (of all groups
      if none has that many); ``air`` is the approval rate over the reference's, the adverse
      impact ratio screened at 0.8 (four-fifths) and gated; ``air_ci_low``/``air_ci_high`` its
      Katz interval at ``confidence`` (NaN for the reference itself and when the reference
      approves nobody);
    - ``smd``: standardised mean difference of the predicted probability, group vs the rest of
      the split (positive: the group is scored riskier).
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
            approved=("approved", "sum"),
            observed_default_rate=("y", "mean"),
            mean_predicted_probability=("p", "mean"),
            approval_rate=("approved", "mean"),
        )
        highest = summary["approval_rate"].max()
        summary["approval_ratio_to_highest"] = (
            summary["approval_rate"] / highest if highest > 0 else np.nan
        )
        summary = summary.reset_index(names="group")
        summary["small_group"] = summary["rows"] < min_rows
        reference = _reference(summary, min_rows)
        base = summary.set_index("group").loc[reference]
        intervals = [
            (1.0, math.nan, math.nan)
            if group == reference and base["approved"] > 0
            else adverse_impact_ratio(
                int(approved),
                int(count),
                int(base["approved"]),
                int(base["rows"]),
                confidence,
            )
            for group, approved, count in zip(
                summary["group"], summary["approved"], summary["rows"], strict=True
            )
        ]
        summary["reference_group"] = reference
        summary["air"], summary["air_ci_low"], summary["air_ci_high"] = zip(*intervals, strict=True)
        p = frame["p"].to_numpy()
        labels = groups.to_numpy()
        summary["smd"] = [
            standardised_mean_difference(p[labels == group], p[labels != group])
            for group in summary["group"]
        ]
        summary.insert(0, "attribute", name)
        lines.append(summary)
    if not lines:
        return pd.DataFrame(columns=FAIRNESS_COLUMNS)
    table = pd.concat(lines, ignore_index=True)[FAIRNESS_COLUMNS]
    table["rows"] = table["rows"].astype(int)
    table["small_group"] = table["small_group"].astype(bool)
    return table


def metric_key(*parts: str) -> str:
    """An MLflow metric name from free text: ``metric_key("fairness_air", "Age", "65+")`` is
    ``fairness_air__Age__65plus``.

    Each part keeps letters, digits, ``_``, ``-`` and ``.``; ``<``, ``>`` and ``+`` become
    ``lt``, ``gt`` and ``plus``, ``(missing)`` becomes ``missing``, any other run of characters
    one ``_``. Parts are joined with ``__``. Names are at most 250 characters (MLflow's limit).
    """
    cleaned = []
    for part in parts:
        text = str(part).strip()
        text = "missing" if text == MISSING_GROUP else text
        text = text.replace("<", "lt").replace(">", "gt").replace("+", "plus")
        text = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")
        cleaned.append(text or "blank")
    return "__".join(cleaned)[:250]


def fairness_metrics(table: pd.DataFrame) -> dict[str, float]:
    """The fairness table as MLflow metrics with stable names, ready for ``mlflow.log_metrics``.

    - ``fairness_air__<attribute>__<group>`` and ``fairness_smd__<attribute>__<group>`` for every
      group (names from ``metric_key``; two groups whose names collide get ``_2``, ``_3`` in
      table order);
    - ``fairness_air_min__<attribute>`` and ``fairness_air_min``: the lowest AIR over the groups
      that are not small (the reference's 1.0 included), per attribute and overall;
    - ``fairness_small_groups``: how many groups are small.

    NaN values (AIR undefined) are left out, as are the minima when no group qualifies: a
    missing ``fairness_air_min`` means "not measured", which the gate treats as such.
    """
    metrics: dict[str, float] = {}
    if table.empty:
        return metrics
    used: set[str] = set()
    for row in table.itertuples(index=False):
        suffix = metric_key(row.attribute, row.group)
        key, n = suffix, 1
        while key in used:
            n += 1
            key = f"{suffix}_{n}"
        used.add(key)
        for name, value in (("fairness_air", row.air), ("fairness_smd", row.smd)):
            if np.isfinite(value):
                metrics[f"{name}__{key}"] = float(value)
    screened = table[~table["small_group"] & np.isfinite(table["air"].astype(float))]
    for attribute, air in screened.groupby("attribute", sort=False)["air"]:
        metrics[metric_key("fairness_air_min", str(attribute))] = float(air.min())
    if not screened.empty:
        metrics["fairness_air_min"] = float(screened["air"].min())
    metrics["fairness_small_groups"] = float(table["small_group"].sum())
    return metrics


def _interval(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f" ({CONFIDENCE:.0%} CI {low:.2f}-{high:.2f})"


def screen_lines(
    table: pd.DataFrame, screen: float = AIR_SCREEN, min_rows: int = SMALL_GROUP_ROWS
) -> list[str]:
    """Lines for the end of ``loanrisk train``: every group whose AIR is below ``screen``.

    One line per such group, with its AIR, interval and test rows; a small group (fewer than
    ``min_rows`` rows, as flagged in ``table``) says so. An attribute whose reference group
    approves nobody gets one line saying the AIR is undefined. When no group is below the
    screen, a single line says so and names the lowest AIR. ``table`` is ``fairness_table``'s.
    """
    if table.empty:
        return ["no protected columns declared: adverse impact not measured"]
    lines = []
    for attribute, rows in table.groupby("attribute", sort=False):
        if not np.isfinite(rows["air"].astype(float)).any():
            lines.append(
                f"{attribute}: no group is approved at this threshold, the AIR is undefined"
            )
            continue
        rates = dict(zip(rows["group"], rows["approval_rate"], strict=True))
        for row in rows.itertuples(index=False):
            if not (np.isfinite(row.air) and row.air < screen):
                continue
            line = (
                f"{attribute} = {row.group}: AIR {row.air:.2f}"
                f"{_interval(row.air_ci_low, row.air_ci_high)} on {row.rows} test rows, below "
                f"the {screen:.2f} screen (approval rate {row.approval_rate:.2f} vs "
                f"{rates[row.reference_group]:.2f} for {row.reference_group})"
            )
            if row.small_group:
                line += (
                    f"; small group (fewer than {min_rows} rows): too few to judge, "
                    "not counted in fairness_air_min"
                )
            lines.append(line)
    if lines:
        return lines
    screened = table[~table["small_group"]]
    lowest = (screened if not screened.empty else table).sort_values("air").iloc[0]
    return [
        f"every protected group passes the {screen:.2f} screen (lowest AIR {lowest['air']:.2f}: "
        f"{lowest['attribute']} = {lowest['group']}, {lowest['rows']} test rows)"
    ]


def fairness_gate(metrics: Mapping[str, float], min_air: float | None) -> str | None:
    """The fairness rule of the promotion gate: a reason to hold the version back, or None.

    ``metrics`` are ``fairness_metrics``'s (extra keys are ignored). ``min_air`` None means the
    rule is off. A version is held when ``fairness_air_min`` is below ``min_air``, or when it is
    absent or NaN (no protected column declared, or no group of at least SMALL_GROUP_ROWS test
    rows): a fairness condition that cannot be checked is not passed.
    """
    if min_air is None:
        return None
    air = metrics.get("fairness_air_min")
    if air is None or not math.isfinite(air):
        return (
            f"fairness_air_min could not be measured (no protected column with a group of at "
            f"least {SMALL_GROUP_ROWS} test rows), so --min-air {min_air:g} cannot be checked"
        )
    if air < min_air:
        worst = sorted(
            (value, key.removeprefix("fairness_air_min__"))
            for key, value in metrics.items()
            if key.startswith("fairness_air_min__")
        )
        where = f" ({worst[0][1]})" if worst else ""
        return f"fairness_air_min {air:.3f}{where} is below --min-air {min_air:g}"
    return None
