import numpy as np
import pandas as pd
import pytest

from training.fairness import (
    FAIRNESS_COLUMNS,
    MISSING_GROUP,
    adverse_impact_ratio,
    age_bands,
    fairness_gate,
    fairness_metrics,
    fairness_table,
    metric_key,
    screen_lines,
    standardised_mean_difference,
)


def test_age_bands_cover_every_age_and_keep_missing_apart() -> None:
    ages = pd.Series([18, 24, 25, 34, 35, 64, 65, 90, np.nan, 17])
    assert age_bands(ages).tolist() == [
        "18-24",
        "18-24",
        "25-34",
        "25-34",
        "35-44",
        "55-64",
        "65+",
        "65+",
        MISSING_GROUP,
        "<18",
    ]


def test_table_by_hand_for_age_and_marital_status() -> None:
    rows = pd.DataFrame(
        {
            "Age": [22, 23, 40, 41, 42, 70],
            "Marital": ["single", "single", "married", "married", None, "widow"],
        }
    )
    y = np.array([1, 0, 0, 0, 1, 0])
    p = np.array([0.6, 0.2, 0.1, 0.3, 0.7, 0.4])
    table = fairness_table(rows, y, p, threshold=0.5, protected=["Age", "Marital"])
    assert list(table.columns) == FAIRNESS_COLUMNS
    by_group = table.set_index(["attribute", "group"])
    young = by_group.loc[("Age", "18-24")]
    assert young["rows"] == 2
    assert young["observed_default_rate"] == pytest.approx(0.5)
    assert young["mean_predicted_probability"] == pytest.approx(0.4)
    assert young["approval_rate"] == pytest.approx(0.5)  # 0.6 declined, 0.2 approved
    middle = by_group.loc[("Age", "35-44")]
    assert middle["approval_rate"] == pytest.approx(2 / 3)
    assert by_group.loc[("Age", "65+")]["approval_rate"] == pytest.approx(1.0)
    assert middle["approval_ratio_to_highest"] == pytest.approx(2 / 3)
    assert by_group.loc[("Marital", MISSING_GROUP)]["rows"] == 1
    assert by_group.loc[("Marital", "married")]["approval_rate"] == pytest.approx(1.0)
    assert set(table["attribute"]) == {"Age", "Marital"}


def test_no_protected_columns_gives_an_empty_table_with_the_columns() -> None:
    table = fairness_table(
        pd.DataFrame({"x": [1, 2]}), np.array([0, 1]), np.array([0.1, 0.9]), 0.5, []
    )
    assert table.empty and list(table.columns) == FAIRNESS_COLUMNS


def test_other_numeric_protected_columns_are_reported_by_quartile() -> None:
    rows = pd.DataFrame({"income_band": np.arange(100, dtype=float)})
    y = np.zeros(100, dtype=int)
    table = fairness_table(rows, y, np.full(100, 0.1), 0.5, ["income_band"])
    assert len(table) == 4 and table["rows"].sum() == 100


# --- adverse impact ratio, standardised mean difference, metrics, screen lines, gate -----------


def _two_groups(approved_a: int, rows_a: int, approved_b: int, rows_b: int) -> tuple:
    """Rows of groups a and b; approved applicants score 0.1, declined ones 0.9 (threshold 0.5)."""
    groups = ["a"] * rows_a + ["b"] * rows_b
    p = [0.1] * approved_a + [0.9] * (rows_a - approved_a)
    p += [0.1] * approved_b + [0.9] * (rows_b - approved_b)
    rows = pd.DataFrame({"Group": groups})
    return rows, np.zeros(len(groups), dtype=int), np.array(p)


def test_air_and_its_katz_interval_by_hand() -> None:
    # a: 20 of 40 approved (0.5); b: 40 of 50 (0.8). AIR of a = 0.5 / 0.8 = 0.625;
    # se(log AIR) = sqrt(1/20 - 1/40 + 1/40 - 1/50) = sqrt(0.03); z = 1.959964.
    rows, y, p = _two_groups(20, 40, 40, 50)
    table = fairness_table(rows, y, p, 0.5, ["Group"]).set_index("group")
    assert table.loc["a", "reference_group"] == "b"
    assert table.loc["a", "air"] == pytest.approx(0.625)
    assert table.loc["a", "air_ci_low"] == pytest.approx(0.445090, abs=1e-6)
    assert table.loc["a", "air_ci_high"] == pytest.approx(0.877632, abs=1e-6)
    assert table.loc["b", "air"] == 1.0 and np.isnan(table.loc["b", "air_ci_low"])
    assert not table["small_group"].any()
    metrics = fairness_metrics(table.reset_index())
    assert metrics["fairness_air__Group__a"] == pytest.approx(0.625)
    assert metrics["fairness_air_min"] == pytest.approx(0.625)
    assert metrics["fairness_air_min__Group"] == pytest.approx(0.625)
    assert metrics["fairness_small_groups"] == 0.0


def test_the_interval_contains_the_ratio_and_narrows_with_rows() -> None:
    widths = []
    for scale in (1, 10, 100):
        ratio, low, high = adverse_impact_ratio(6 * scale, 10 * scale, 9 * scale, 10 * scale)
        assert ratio == pytest.approx(6 / 9)
        assert low < ratio < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # A wider confidence level gives a wider interval.
    _, low99, high99 = adverse_impact_ratio(60, 100, 90, 100, confidence=0.99)
    _, low95, high95 = adverse_impact_ratio(60, 100, 90, 100)
    assert low99 < low95 and high99 > high95


def test_no_approvals_in_a_group_or_in_the_reference() -> None:
    ratio, low, high = adverse_impact_ratio(0, 50, 40, 50)
    assert ratio == 0.0 and low == 0.0 and 0.0 < high < 0.2
    assert all(np.isnan(v) for v in adverse_impact_ratio(5, 50, 0, 50))
    rows, y, p = _two_groups(0, 40, 0, 50)
    table = fairness_table(rows, y, p, 0.5, ["Group"])
    assert table["air"].isna().all()
    assert "fairness_air_min" not in fairness_metrics(table)
    assert screen_lines(table) == [
        "Group: no group is approved at this threshold, the AIR is undefined"
    ]


def test_standardised_mean_difference_by_hand() -> None:
    # group mean 0.3 (SS 0.02), rest mean 0.2 (SS 0.06): pooled SD sqrt(0.08 / 3).
    d = standardised_mean_difference(np.array([0.2, 0.4]), np.array([0.1, 0.1, 0.4]))
    assert d == pytest.approx(0.1 / np.sqrt(0.08 / 3))
    assert standardised_mean_difference(np.array([0.3, 0.4]), np.array([0.1, 0.2])) > 0
    assert np.isnan(standardised_mean_difference(np.array([0.2]), np.array([])))
    assert np.isnan(standardised_mean_difference(np.full(3, 0.2), np.full(4, 0.2)))
    rows = pd.DataFrame({"Group": ["a", "a", "b", "b", "b"]})
    table = fairness_table(rows, np.zeros(5), np.array([0.2, 0.4, 0.1, 0.1, 0.4]), 0.5, ["Group"])
    smd = table.set_index("group")["smd"]
    assert smd["a"] == pytest.approx(0.1 / np.sqrt(0.08 / 3))
    assert smd["b"] == pytest.approx(-smd["a"])


def test_a_small_group_is_flagged_never_the_reference_and_not_in_the_minimum() -> None:
    # 100 married (60 approved), 100 single (50 approved), 3 widowed (all approved), 2 missing
    # (none approved).
    marital = ["married"] * 100 + ["single"] * 100 + ["widow"] * 3 + [None] * 2
    p = [0.1] * 60 + [0.9] * 40 + [0.1] * 50 + [0.9] * 50 + [0.1] * 3 + [0.9] * 2
    rows = pd.DataFrame({"Marital": marital})
    table = fairness_table(rows, np.zeros(len(p)), np.array(p), 0.5, ["Marital"])
    by_group = table.set_index("group")
    assert by_group["rows"].sum() == len(p)  # missing values are a group, not dropped
    assert by_group.loc[MISSING_GROUP, "rows"] == 2
    assert by_group.loc["widow", "small_group"] and by_group.loc[MISSING_GROUP, "small_group"]
    assert set(by_group["reference_group"]) == {"married"}
    assert by_group.loc["widow", "air"] == pytest.approx(1 / 0.6)
    assert by_group.loc["widow", "approval_ratio_to_highest"] == pytest.approx(1.0)
    assert by_group.loc[MISSING_GROUP, "air"] == 0.0
    metrics = fairness_metrics(table)
    assert metrics["fairness_air__Marital__missing"] == 0.0
    assert metrics["fairness_air_min"] == pytest.approx(0.5 / 0.6)  # single, not the missing 0.0
    assert metrics["fairness_small_groups"] == 2.0
    lines = screen_lines(table)
    assert len(lines) == 1
    assert lines[0].startswith("Marital = (missing): AIR 0.00 (95% CI 0.00-")
    assert "on 2 test rows" in lines[0] and "small group (fewer than 30 rows)" in lines[0]
    assert screen_lines(table, screen=0.9)[1].startswith("Marital = single: AIR 0.83 (95% CI 0.6")
    assert "on 100 test rows" in screen_lines(table, screen=0.9)[1]
    assert "small group" not in screen_lines(table, screen=0.9)[1]


def test_summary_says_when_every_group_passes_and_when_nothing_is_declared() -> None:
    rows, y, p = _two_groups(45, 50, 40, 40)
    table = fairness_table(rows, y, p, 0.5, ["Group"])
    assert screen_lines(table) == [
        "every protected group passes the 0.80 screen (lowest AIR 0.90: Group = a, 50 test rows)"
    ]
    empty = fairness_table(rows, y, p, 0.5, [])
    assert screen_lines(empty) == ["no protected columns declared: adverse impact not measured"]
    assert fairness_metrics(empty) == {}


def test_metric_names_are_valid_mlflow_names_and_distinct() -> None:
    from mlflow.utils.validation import _validate_metric_name

    groups = ["<18", "65+", "(0.5, 1.2]", "a b/c", "a+b", "aplusb", "é", "../x", MISSING_GROUP]
    rows = pd.DataFrame({"Age group": groups * 4})
    p = np.linspace(0.05, 0.95, len(rows))
    table = fairness_table(rows, np.zeros(len(rows)), p, 0.5, ["Age group"], min_rows=1)
    metrics = fairness_metrics(table)
    per_group = [k for k in metrics if k.startswith("fairness_air__")]
    assert len(per_group) == len(set(per_group)) == len(groups)
    for key in metrics:
        _validate_metric_name(key)
    assert metric_key("fairness_air", "Age", "<18") == "fairness_air__Age__lt18"
    assert metric_key("fairness_air", "Age", "65+") == "fairness_air__Age__65plus"
    assert metric_key("fairness_air", "Marital", MISSING_GROUP) == "fairness_air__Marital__missing"
    assert {"fairness_air__Age_group__aplusb", "fairness_air__Age_group__aplusb_2"} <= set(metrics)


def test_fairness_gate() -> None:
    metrics = {"fairness_air_min": 0.5, "fairness_air_min__Age": 0.5, "fairness_air_min__X": 0.9}
    assert fairness_gate(metrics, None) is None
    assert fairness_gate(metrics, 0.5) is None
    assert fairness_gate(metrics, 0.8) == "fairness_air_min 0.500 (Age) is below --min-air 0.8"
    assert fairness_gate({}, None) is None
    held = fairness_gate({}, 0.8)
    assert held is not None and "could not be measured" in held
    held = fairness_gate({"fairness_air_min": float("nan")}, 0.8)
    assert held is not None and "could not be measured" in held


def test_on_credit_data_with_a_logistic_regression_score() -> None:
    from pathlib import Path

    from training.baselines import fit_logistic_regression
    from training.data import BUNDLED_DATA, load_dataset, stratified_split
    from training.evaluate import ks_threshold

    schema = Path(BUNDLED_DATA).with_suffix(".schema.json")
    dataset = load_dataset(BUNDLED_DATA, None, None, schema)
    assert set(dataset.contract.protected) == {"Age", "Marital"}
    assert not set(dataset.contract.protected) & set(dataset.contract.names)
    split = stratified_split(dataset.y, 0)
    model = fit_logistic_regression(
        dataset.features.iloc[split.train], dataset.y[split.train], dataset.contract, 0
    )
    validation = model.probability(dataset.features.iloc[split.validation])
    threshold = ks_threshold(dataset.y[split.validation], validation)
    # Every row, the one with a missing marital status included, lands in a group.
    every = np.arange(len(dataset.y))
    p = model.probability(dataset.features)
    table = fairness_table(dataset.frame, dataset.y, p, threshold, dataset.contract.protected)
    assert (table.groupby("attribute")["rows"].sum() == len(every)).all()
    assert dataset.frame["Marital"].isna().any()
    assert MISSING_GROUP in set(table.loc[table["attribute"] == "Marital", "group"])
    assert "65+" in set(table["group"]) and "18-24" in set(table["group"])
    valid = table["air_ci_low"].notna()
    assert (table.loc[valid, "air_ci_low"] <= table.loc[valid, "air"]).all()
    assert (table.loc[valid, "air"] <= table.loc[valid, "air_ci_high"]).all()
    metrics = fairness_metrics(table)
    assert 0.0 < metrics["fairness_air_min"] <= 1.0
    assert {"fairness_air_min__Age", "fairness_air_min__Marital"} <= set(metrics)
    assert metrics["fairness_air__Age__18-24"] == pytest.approx(
        table.set_index(["attribute", "group"]).loc[("Age", "18-24"), "air"]
    )
    assert screen_lines(table)
