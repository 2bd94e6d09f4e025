"""The simple models a model-risk reviewer tries first, with fixed, documented settings.

Both see exactly the DNN's inputs (the contract's features: protected and dropped columns excluded)
and are fitted on the same rows. Their settings are standard, not tuned against the DNN:

* ``logreg``: scikit-learn ``LogisticRegression`` (L2, C = 1) on median-imputed, standardised
  numerics with missing-value indicators and one-hot categoricals (missing is its own category).
* ``lightgbm``: 300 trees of at most 15 leaves, learning rate 0.03, 80 % row and column
  subsampling, at least 50 rows per leaf; numerics as they are (LightGBM routes missing values
  itself), categoricals as integer codes.
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


def baseline_params(name: str) -> dict[str, Any]:
    """The fixed settings of a baseline, for the MLflow run."""
    if name == "logreg":
        return {"model": "LogisticRegression", **LOGREG_PARAMS}
    if name == "lightgbm":
        return {"model": "LGBMClassifier", **LIGHTGBM_PARAMS}
    raise KeyError(name)
