import numpy as np
import pandas as pd
import pytest

from training.fairness import FAIRNESS_COLUMNS, MISSING_GROUP, age_bands, fairness_table


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
