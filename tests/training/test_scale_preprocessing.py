"""The whole-frame preprocessing path (column by column, categories read once per distinct value,
into a preallocated float32 array) gives the same statistics and matrices as the row-value path
it replaced, bit for bit."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from models.normalise import CURRENT_NORMALISATION, NO_NORMALISATION, category_reader
from models.preprocessing import MAX_CATEGORIES, MIN_CATEGORY_ROWS, Preprocessor
from tests.conftest import CREDIT_DATA, LENDING_CLUB
from training.data import load_dataset


def reference_fit(frame: pd.DataFrame, contract) -> Preprocessor:
    """The categories as the value-by-value Counter found them before the fast path."""
    fitted = Preprocessor.fit(frame, contract)
    read = category_reader(CURRENT_NORMALISATION)
    categories = []
    for spec in contract.categorical:
        counts = Counter(read(v) for v in frame[spec.name].tolist())
        counts.pop(None, None)
        frequent = [c for c, n in counts.most_common(MAX_CATEGORIES) if n >= MIN_CATEGORY_ROWS]
        categories.append(tuple(sorted(frequent)))
    assert [t.categories for t in fitted.categorical] == categories
    return fitted


def mapping_path(preprocessor: Preprocessor, frame: pd.DataFrame) -> np.ndarray:
    """The mapping-of-columns path (a DataFrame went through it before)."""
    return preprocessor.transform({name: frame[name] for name in frame.columns})


@pytest.mark.parametrize("path", [CREDIT_DATA, LENDING_CLUB], ids=["credit_data", "lending_club"])
def test_frame_path_equals_mapping_path_on_the_bundled_data(path) -> None:
    dataset = load_dataset(path)
    features = dataset.features
    preprocessor = reference_fit(features, dataset.contract)
    expected = mapping_path(preprocessor, features)
    got = preprocessor.transform(features)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    out = np.full(expected.shape, 7.0, dtype=np.float32)  # stale values must be cleared
    assert preprocessor.transform(features, out=out) is out
    np.testing.assert_array_equal(out, expected)


def test_awkward_columns_match(credit_frame: pd.DataFrame) -> None:
    """Missing markers of every kind, padded text, mixed objects and a column that is absent."""
    dataset = load_dataset(CREDIT_DATA)
    contract = dataset.contract
    preprocessor = Preprocessor.fit(dataset.features, contract)
    frame = dataset.features.head(40).copy()
    first, second = (spec.name for spec in contract.categorical[:2])
    frame[first] = pd.Series(
        ["rent", " rent ", None, np.nan, pd.NA, "", "unseen", 1, 1.0, True] * 4, dtype=object
    )
    frame[second] = pd.array([None, "owner", "  "] * 13 + ["x"], dtype="string")
    numeric = contract.numeric[0].name
    frame[numeric] = pd.array([None, 3, 1e12, -5] * 10, dtype="Int64")
    for version in (NO_NORMALISATION, CURRENT_NORMALISATION):
        reader = Preprocessor.from_dict({**preprocessor.to_dict(), "normalisation": version})
        np.testing.assert_array_equal(reader.transform(frame), mapping_path(reader, frame))
        dropped = frame.drop(columns=[numeric])
        np.testing.assert_array_equal(reader.transform(dropped), mapping_path(reader, dropped))


def test_out_must_fit() -> None:
    dataset = load_dataset(CREDIT_DATA)
    preprocessor = Preprocessor.fit(dataset.features, dataset.contract)
    rows = dataset.features.head(5)
    with pytest.raises(ValueError, match="float32"):
        preprocessor.transform(rows, out=np.zeros((5, preprocessor.width)))
    with pytest.raises(ValueError, match="DataFrames only"):
        preprocessor.transform(
            {n: rows[n] for n in rows.columns}, out=np.zeros((5, preprocessor.width), np.float32)
        )
