"""What a credit-data experiment is given, and the loan file it reads, split and encoded.

Bad input raises ``ExperimentError`` (or ``training.data.DataError`` for the loan file itself),
both one-line messages the command line prints as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.preprocessing import Preprocessor
from training.data import BUNDLED_DATA, load_dataset, stratified_split


class ExperimentError(ValueError):
    """An experiment cannot run on the given input; the message says why in one line."""


@dataclass(frozen=True)
class ExperimentOptions:
    """What every credit-data experiment is given; each experiment adds its own settings."""

    data: Path = BUNDLED_DATA
    target: str | None = None
    positive_label: str | None = None
    experiment: str = ""  # each experiment names its own default
    seed: int = 0
    quick: bool = False


@dataclass(frozen=True)
class CreditSplit:
    """Encoded training and test rows of a loan file, split as ``loanrisk train`` splits it.

    The validation rows of that split are left out: no experiment stops early, and the test rows
    are then the very rows on which ``loanrisk train`` reports its test metrics.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    data_file: str
    data_sha256: str

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def params(self) -> dict[str, Any]:
        return {
            "data_file": self.data_file,
            "data_sha256": self.data_sha256,
            "rows_train": len(self.y_train),
            "rows_test": len(self.y_test),
            "n_features_encoded": self.n_features,
        }


def load_credit_split(
    path: Path, seed: int, target: str | None = None, positive_label: str | None = None
) -> CreditSplit:
    """Load and validate a loan file (raises ``DataError``), split it, fit the preprocessing on
    the training rows and encode both parts."""
    dataset = load_dataset(path, target, positive_label)
    split = stratified_split(dataset.y, seed)
    features = dataset.features
    preprocessor = Preprocessor.fit(features.iloc[split.train], dataset.contract)
    return CreditSplit(
        x_train=preprocessor.transform(features.iloc[split.train]),
        y_train=dataset.y[split.train],
        x_test=preprocessor.transform(features.iloc[split.test]),
        y_test=dataset.y[split.test],
        data_file=dataset.path.name,
        data_sha256=dataset.sha256,
    )
