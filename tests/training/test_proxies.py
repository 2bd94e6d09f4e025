import numpy as np
import pandas as pd
import pytest

from training.fairness import MISSING_GROUP
from training.proxies import (
    PROXY_AUC_FLAG,
    PROXY_COLUMNS,
    input_levels,
    out_of_fold_scores,
    proxy_markdown,
    proxy_metrics,
    proxy_table,
)

INPUTS = {
    "district": "categorical",
    "distance": "numeric",
    "spread": "numeric",
    "income": "numeric",
    "applicant_id": "categorical",
    "term": "categorical",
}


def _loans(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Race drives ``district`` (strong proxy) and ``spread`` (U-shaped link); the other inputs
    are independent of it. ``applicant_id`` has a category per row, ``income`` missing values."""
    rng = np.random.default_rng(seed)
    race = rng.choice(["a", "b", "c"], size=rows, p=[0.6, 0.3, 0.1]).astype(object)
    race[rng.random(rows) < 0.03] = None
    b = race == "b"
    district = np.where(
        b, rng.choice(["north", "east"], size=rows), rng.choice(["south", "west"], size=rows)
    )
    district = np.where(rng.random(rows) < 0.1, rng.choice(["north", "south"], size=rows), district)
    sign = rng.choice([-1.0, 1.0], size=rows)
    spread = np.where(race == "c", sign * 2.0, 0.0) + rng.normal(size=rows) * 0.7
    income = rng.lognormal(8, 0.5, size=rows)
    income[rng.random(rows) < 0.2] = np.nan
    return pd.DataFrame(
        {
            "race": race,
            "district": district,
            "distance": rng.normal(size=rows),
            "spread": spread,
            "income": income,
            "applicant_id": [f"id{k}" for k in range(rows)],
            "term": rng.choice(["36", "60"], size=rows),
        }
    )


def test_the_proxy_is_named_first_and_flagged_and_the_others_are_not() -> None:
    table = proxy_table(_loans(), INPUTS, ["race"])
    assert list(table.columns) == PROXY_COLUMNS
    assert len(table) == len(INPUTS)
    first = table.iloc[0]
    assert first["input"] == "district" and first["group"] == "b" and first["flagged"]
    assert first["auc"] > 0.85
    assert table["auc"].is_monotonic_decreasing
    # The U-shaped link (group c at both tails) is seen: a monotone one-feature model would not.
    spread = table.set_index("input").loc["spread"]
    assert spread["flagged"] and spread["group"] == "c"
    unrelated = table.set_index("input").loc[["distance", "income", "applicant_id", "term"]]
    assert not unrelated["flagged"].any()
    assert (unrelated["auc"] < 0.6).all()
    # Rows with a missing protected value are left out, every group is scored.
    assert (table["rows"] == _loans()["race"].notna().sum()).all()
    assert (table["groups"] == 3).all()


def test_an_identifier_is_not_a_proxy_out_of_fold_though_it_would_be_in_sample() -> None:
    from sklearn.metrics import roc_auc_score

    frame = _loans()
    known = frame["race"].notna().to_numpy()
    labels = (frame["race"] == "b").to_numpy()[known]
    levels = input_levels(frame["applicant_id"][known], "categorical")
    # A table fitted on all rows and read back on the same rows separates perfectly ...
    share = pd.Series(labels).groupby(levels).transform("mean").to_numpy()
    assert roc_auc_score(labels, share) == 1.0
    # ... scored out of fold, every identifier is unseen and gets the prior: no information.
    table = proxy_table(frame, {"applicant_id": "categorical"}, ["race"])
    assert table.loc[0, "auc"] == pytest.approx(0.5, abs=0.05) and not table.loc[0, "flagged"]


def test_out_of_fold_scores_by_hand() -> None:
    levels = np.array([0, 0, 1, 1, 0, 1])
    targets = np.array([[1.0], [0.0], [1.0], [1.0], [1.0], [0.0]])
    folds = np.array([0, 1, 0, 1, 0, 1])
    scores = out_of_fold_scores(levels, targets, folds, smoothing=2.0)
    # Fold 0 is scored from fold 1's rows: level 0 has [0], level 1 has [1, 0]; prior 1/3.
    assert scores[0, 0] == pytest.approx((0 + 2 / 3) / (1 + 2))
    assert scores[2, 0] == pytest.approx((1 + 2 / 3) / (2 + 2))
    # Fold 1 from fold 0's rows: level 0 has [1, 1], level 1 has [1]; prior 1.
    assert scores[1, 0] == pytest.approx(1.0)
    assert scores[3, 0] == pytest.approx(1.0)


def test_input_levels_keep_missing_values_apart() -> None:
    categories = input_levels(pd.Series(["x", None, "y", "x", np.nan]), "categorical")
    assert categories[0] == categories[3] and categories[1] == categories[4]
    assert len(set(categories)) == 3 and categories.min() == 0
    numbers = pd.Series(np.r_[np.arange(100.0), [np.nan] * 5])
    levels = input_levels(numbers, "numeric", bins=10)
    assert len(set(levels[:100])) == 10 and set(levels[100:]) == {10}
    few = input_levels(pd.Series([1.0, 2.0, np.nan, 2.0]), "numeric")
    assert few[1] == few[3] and len(set(few)) == 3
    with pytest.raises(ValueError, match="input kind"):
        input_levels(pd.Series([1.0]), "text")


def test_attributes_without_two_large_groups_give_no_lines() -> None:
    frame = _loans(200)
    frame["race"] = "a"
    table = proxy_table(frame, INPUTS, ["race", "not_a_column"])
    assert table.empty and list(table.columns) == PROXY_COLUMNS
    assert proxy_metrics(table) == {}
    assert proxy_markdown(table).startswith("No proxy check")


def test_markdown_and_metrics() -> None:
    table = proxy_table(_loans(), INPUTS, ["race"])
    text = proxy_markdown(table)
    lines = text.splitlines()
    assert lines[0].startswith("| input | protected attribute | AUC |")
    assert lines[2].startswith("| district | race | 0.") and lines[2].endswith("| **flagged** |")
    assert f"Flagged at AUC ≥ {PROXY_AUC_FLAG:.2f}" in text
    metrics = proxy_metrics(table)
    assert metrics["fairness_proxy_auc_max"] == pytest.approx(table.loc[0, "auc"])
    assert metrics["fairness_proxies_flagged"] == float(table["flagged"].sum())


def test_on_credit_data_with_ages_in_bands_and_missing_values() -> None:
    from pathlib import Path

    from training.data import BUNDLED_DATA, load_dataset

    dataset = load_dataset(BUNDLED_DATA, None, None, Path(BUNDLED_DATA).with_suffix(".schema.json"))
    inputs = {f.name: f.kind for f in dataset.contract.features}
    assert dataset.frame[list(inputs)].isna().any().sum() >= 3
    table = proxy_table(dataset.frame, inputs, dataset.contract.protected)
    assert len(table) == 2 * len(inputs)
    assert table["auc"].notna().all()
    assert set(table.loc[table["attribute"] == "Age", "group"]) <= {
        "18-24",
        "25-34",
        "35-44",
        "45-54",
        "55-64",
        "65+",
    }
    assert MISSING_GROUP not in set(table["group"])
    # Years with the current employer tell the young apart.
    seniority = table.set_index(["input", "attribute"]).loc[("Seniority", "Age")]
    assert seniority["flagged"] and seniority["group"] == "18-24"
