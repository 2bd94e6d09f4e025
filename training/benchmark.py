"""Stratified k-fold comparison of the DNN pipeline with the baselines, on the same folds.

Every model sees the same test fold. The DNN runs exactly the training pipeline: it splits its
training folds into rows to fit on and rows to stop early and calibrate on (the 60/20 ratio of
``loanrisk train``); the baselines need no held-out rows, so they are fitted on all training folds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from models.network import NetworkConfig
from training.baselines import BASELINES
from training.data import DataError, Dataset, load_dataset
from training.evaluate import expected_calibration_error
from training.pipeline import fit_dnn

MODEL_NAMES = ("dnn", "logreg", "lightgbm")
# Share of each training fold the DNN holds out for early stopping and calibration: 0.25 of 80 %
# is the 20 % validation split of ``loanrisk train``.
DNN_VALIDATION_FRACTION = 0.25

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FoldScore:
    """One model on one test fold."""

    fold: int
    auc: float
    brier: float
    ece: float
    fit_seconds: float
    test_rows: np.ndarray = field(repr=False)


@dataclass
class BenchmarkResult:
    dataset: str
    rows: int
    positive_rate: float
    folds: int
    seed: int
    scores: dict[str, list[FoldScore]]

    def summary(self, name: str) -> dict[str, float]:
        """Mean and spread over folds; ``fit_seconds`` is the mean time to fit one fold."""
        scores = self.scores[name]
        aucs = np.array([s.auc for s in scores])
        return {
            "auc_mean": float(aucs.mean()),
            "auc_std": float(aucs.std(ddof=1)) if len(aucs) > 1 else 0.0,
            "brier_mean": float(np.mean([s.brier for s in scores])),
            "ece_mean": float(np.mean([s.ece for s in scores])),
            "fit_seconds": float(np.mean([s.fit_seconds for s in scores])),
        }

    def to_json(self) -> dict[str, Any]:
        """The object ``loanrisk benchmark --json`` prints."""
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "positive_rate": self.positive_rate,
            "folds": self.folds,
            "models": {name: self.summary(name) for name in self.scores},
        }


def _score(
    fold: int, y: np.ndarray, probability: np.ndarray, test: np.ndarray, seconds: float
) -> FoldScore:
    return FoldScore(
        fold=fold,
        auc=float(roc_auc_score(y, probability)),
        brier=float(brier_score_loss(y, probability)),
        ece=expected_calibration_error(y, probability),
        fit_seconds=seconds,
        test_rows=test,
    )


def fold_indices(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) row positions of each fold, shared by every model."""
    counts = np.bincount(y, minlength=2)
    if counts.min() < folds:
        raise DataError(
            f"{folds}-fold cross-validation needs at least {folds} rows of each class; "
            f"the smaller class has {int(counts.min())}"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def run_benchmark(
    dataset: Dataset,
    folds: int = 5,
    seed: int = 0,
    network: NetworkConfig | None = None,
    models: tuple[str, ...] = MODEL_NAMES,
    progress: Progress | None = None,
    network_overrides: Mapping[str, Any] | None = None,
) -> BenchmarkResult:
    """Cross-validate ``models`` on ``dataset`` with one set of stratified folds.

    Without ``network`` the DNN uses the default recipe for each fold's size, with
    ``network_overrides`` on top, exactly as ``loanrisk train`` does.
    """
    say = progress or (lambda _message: None)
    unknown = set(models) - set(MODEL_NAMES)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; choose from {MODEL_NAMES}")
    if folds < 2:
        raise DataError("cross-validation needs at least 2 folds")
    features, y = dataset.features, dataset.y
    scores: dict[str, list[FoldScore]] = {name: [] for name in models}
    for fold, (train, test) in enumerate(fold_indices(y, folds, seed), start=1):
        for name in models:
            started = time.perf_counter()
            if name == "dnn":
                fit_rows, validation_rows = train_test_split(
                    train,
                    test_size=DNN_VALIDATION_FRACTION,
                    stratify=y[train],
                    random_state=seed + fold,
                )
                fitted = fit_dnn(
                    features,
                    y,
                    np.sort(fit_rows),
                    np.sort(validation_rows),
                    dataset.contract,
                    network,
                    seed=seed + fold,
                    log_to_mlflow=False,
                    overrides=network_overrides,
                )
                seconds = time.perf_counter() - started
                probability = fitted.risk_model.score_frame(features.iloc[test])
            else:
                model = BASELINES[name](features.iloc[train], y[train], dataset.contract, seed)
                seconds = time.perf_counter() - started
                probability = model.probability(features.iloc[test])
            score = _score(fold, y[test], probability, test, seconds)
            scores[name].append(score)
            say(
                f"fold {fold}/{folds}  {name:<9} AUC {score.auc:.4f}  Brier {score.brier:.4f}  "
                f"ECE {score.ece:.4f}  ({seconds:.1f} s)"
            )
    return BenchmarkResult(
        dataset=dataset.path.name,
        rows=len(y),
        positive_rate=float(y.mean()),
        folds=folds,
        seed=seed,
        scores=scores,
    )


def benchmark_file(
    path: Path,
    target: str | None = None,
    positive_label: str | None = None,
    schema: Path | None = None,
    **kwargs: Any,
) -> BenchmarkResult:
    """Load (inferring the contract unless a schema is given or sits next to the file) and run."""
    return run_benchmark(load_dataset(path, target, positive_label, schema), **kwargs)
