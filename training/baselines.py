"""The simple models a model-risk reviewer tries first, with fixed, documented settings.

Both see exactly the DNN's inputs (the contract's features: protected and dropped columns excluded)
and are fitted on the same rows. Their settings are standard, not tuned against the DNN:

* ``logreg``: scikit-learn ``LogisticRegression`` (L2, C = 1) on median-imputed, standardised
  numerics with missing-value indicators and one-hot categoricals (missing is its own category).
* ``lightgbm``: 300 trees of at most 15 leaves, learning rate 0.03, 80 % row and column
  subsampling, at least 50 rows per leaf; numerics as they are (LightGBM routes missing values
  itself), categoricals as integer codes.

On more than :data:`BASELINE_MAX_TRAIN_ROWS` training rows both are fitted on a stratified random
sample of that many (:func:`baseline_sample`) and measured on every test row; the run says so (a
parameter, a tag and a printed line).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from models.contract import FeatureContract

MISSING_CATEGORY = "__missing__"

LOGREG_PARAMS: dict[str, Any] = {"C": 1.0, "max_iter": 5000}
LIGHTGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "num_leaves": 15,
    "learning_rate": 0.03,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "min_child_samples": 50,
}
BASELINE_NAMES = ("logreg", "lightgbm")
# Training rows the baselines are fitted on at most. Measured on the 1M-row synthetic book
# (600,000 training rows, 11 features): fitted on 200,000 sampled rows, logistic regression's and
# LightGBM's test ROC AUC moved by less than 0.001 (the test split's own sampling error is about
# 0.0015 at 200,000 test rows), while the full fits took most of the run's time after the DNN and
# their text-category frames (one Python string per value) most of its memory.
BASELINE_MAX_TRAIN_ROWS = 200_000


class Classifier(Protocol):
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...


def _categoricals_as_text(frame: pd.DataFrame, contract: FeatureContract) -> pd.DataFrame:
    """Categorical columns as strings with an explicit missing category; numerics as floats."""
    out = pd.DataFrame(index=frame.index)
    for spec in contract.features:
        column = frame[spec.name] if spec.name in frame.columns else pd.Series(np.nan, frame.index)
        if spec.kind == "categorical":
            out[spec.name] = column.astype(object).where(column.notna(), MISSING_CATEGORY)
            out[spec.name] = out[spec.name].astype(str)
        else:
            out[spec.name] = pd.to_numeric(column, errors="coerce").astype(np.float64)
    return out


class _Prepared:
    """A fitted scikit-learn estimator behind the categorical-as-text preparation."""

    def __init__(self, estimator: Any, contract: FeatureContract) -> None:
        self.estimator = estimator
        self.contract = contract

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> _Prepared:
        self.estimator.fit(_categoricals_as_text(frame, self.contract), y)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(_categoricals_as_text(frame, self.contract))

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of default (the positive class) per row."""
        return np.asarray(self.predict_proba(frame), dtype=np.float64)[:, 1]


def fit_logistic_regression(
    frame: pd.DataFrame, y: np.ndarray, contract: FeatureContract, seed: int = 0
) -> _Prepared:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f.name for f in contract.numeric]
    categorical = [f.name for f in contract.categorical]
    columns = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                numeric,
            ),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = make_pipeline(columns, LogisticRegression(**LOGREG_PARAMS, random_state=seed))
    return _Prepared(model, contract).fit(frame, y)


def fit_lightgbm(
    frame: pd.DataFrame, y: np.ndarray, contract: FeatureContract, seed: int = 0
) -> _Prepared:
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [f.name for f in contract.numeric]
    categorical = [f.name for f in contract.categorical]
    columns = ColumnTransformer(
        [
            ("numeric", "passthrough", numeric),
            (
                "categorical",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                categorical,
            ),
        ]
    )
    booster = LGBMClassifier(
        **LIGHTGBM_PARAMS, random_state=seed, deterministic=True, n_jobs=2, verbose=-1
    )
    return _Prepared(make_pipeline(columns, booster), contract).fit(frame, y)


BASELINES: dict[str, Callable[[pd.DataFrame, np.ndarray, FeatureContract, int], _Prepared]] = {
    "logreg": fit_logistic_regression,
    "lightgbm": fit_lightgbm,
}


def baseline_sample(y: np.ndarray, seed: int, limit: int | None = None) -> np.ndarray | None:
    """Sorted positions (int64) of a stratified random sample of ``limit`` (default
    :data:`BASELINE_MAX_TRAIN_ROWS`) rows of outcomes ``y``, each class in its share; None when
    ``y`` has no more rows than that (use them all)."""
    limit = BASELINE_MAX_TRAIN_ROWS if limit is None else limit
    if len(y) <= limit:
        return None
    from sklearn.model_selection import train_test_split

    chosen, _ = train_test_split(np.arange(len(y)), train_size=limit, stratify=y, random_state=seed)
    return np.sort(chosen)


def baseline_params(name: str) -> dict[str, Any]:
    """The fixed settings of a baseline, for the MLflow run."""
    if name == "logreg":
        return {"model": "LogisticRegression", **LOGREG_PARAMS}
    if name == "lightgbm":
        return {"model": "LGBMClassifier", **LIGHTGBM_PARAMS}
    raise KeyError(name)
