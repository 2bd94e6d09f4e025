"""Stage 1, prepare: the validated data, its train / validation / test split, the network's
recipe for that many training rows, and the record of the environment; logged on the run as tags,
parameters, row counts, the data report (``data/report.md`` and ``data/report.json``) and the
training data as the run's dataset input (source, digest, schema, target)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas

from models.contract import FeatureContract
from models.network import NetworkConfig
from training.data import Dataset, Split, load_dataset, stratified_split
from training.fit import release_memory
from training.pipeline import resolve_config
from training.reproducibility import environment_record
from training.stages.options import TrainOptions

Part = Literal["train", "validation", "test"]
PARTS: tuple[Part, ...] = ("train", "validation", "test")
# Rows MLflow's dataset schema is inferred from on larger files (see log_data).
DATASET_SCHEMA_ROWS = 10_000


@dataclass(frozen=True)
class Prepared:
    """The data of one run, split, with the recipe and the environment it will be fitted in."""

    dataset: Dataset
    split: Split
    config: NetworkConfig
    environment: Mapping[str, Any]

    @property
    def contract(self) -> FeatureContract:
        return self.dataset.contract

    def rows(self, part: Part) -> pd.DataFrame:
        """The raw feature columns of one part of the split."""
        return self.dataset.features.iloc[getattr(self.split, part)]

    def y(self, part: Part) -> np.ndarray:
        """The 0/1 outcomes of one part of the split (int64)."""
        return self.dataset.y[getattr(self.split, part)]

    @property
    def row_counts(self) -> dict[str, int]:
        return {part: len(getattr(self.split, part)) for part in PARTS}

    @property
    def git_commit(self) -> str:
        return self.environment["git"]["commit"]

    def summary(self) -> str:
        """For the console: file, rows, features, default rate; then one line per column the
        checks changed, dropped or read specially (the full table is ``data/report.md``)."""
        head = (
            f"training on {self.dataset.path.name}: {len(self.dataset.frame)} rows, "
            f"{len(self.contract.features)} features, positive rate {self.dataset.y.mean():.3f}"
        )
        examined = self.dataset.examined
        return "\n".join([head, *examined.lines()]) if examined is not None else head

    @property
    def run_name(self) -> str:
        """Tells runs apart in MLflow's runs table: data file, layers, keep probability."""
        units = "-".join(str(u) for u in self.config.hidden_units)
        return f"{self.dataset.path.stem} · {units} · p{self.config.keep_probability:.2f}"


def prepare(options: TrainOptions) -> Prepared:
    """Read, validate and split ``options.data``; raise DataError on unusable data."""
    dataset = load_dataset(options.data, options.target, options.positive_label, options.schema)
    split = stratified_split(dataset.y, options.seed)
    release_memory()  # the checks' per-value scratch, before TensorFlow and the fit add theirs
    return Prepared(
        dataset=dataset,
        split=split,
        config=resolve_config(options.network, len(split.train), options.network_overrides),
        environment=environment_record(dataset.sha256, options.seed),
    )


def log_prepared(prepared: Prepared, options: TrainOptions) -> None:
    """Tag the active run and log the recipe, the data's identity and the split's sizes."""
    dataset, contract, environment = prepared.dataset, prepared.contract, prepared.environment
    mlflow.set_tags(
        {
            "loanrisk.stage": "train",
            "loanrisk.data_file": dataset.path.name,
            "loanrisk.model_kind": "dnn",
            "loanrisk.git_commit": prepared.git_commit,
            "mlflow.runName": prepared.run_name,
        }
    )
    log_data(prepared)
    mlflow.log_params(
        {
            **prepared.config.to_params(),
            "seed": options.seed,
            "data_file": dataset.path.name,
            "data_sha256": dataset.sha256,
            "target": contract.target,
            "positive_label": contract.positive_label,
            "protected_columns": ",".join(contract.protected) or "none",
            "dropped_columns": ",".join(contract.dropped) or "none",
            "n_features_raw": len(contract.features),
            "calibration": options.calibration,
            "gate_margin": options.gate_margin,
            "force_promote": options.force_promote,
            "git_commit": prepared.git_commit,
            "git_dirty": environment["git"]["dirty"],
            "python_version": environment["python"],
            **{f"version_{k}": v for k, v in environment["packages"].items()},
        }
    )
    rows = prepared.row_counts
    mlflow.log_metrics(
        {
            "rows_total": len(dataset.frame),
            "rows_train": rows["train"],
            "rows_validation": rows["validation"],
            "rows_test": rows["test"],
            "positive_rate_train": float(prepared.y("train").mean()),
            "positive_rate_test": float(prepared.y("test").mean()),
        }
    )


def log_data(prepared: Prepared) -> None:
    """The data report as artifacts, and the training data as the run's dataset input."""
    dataset, contract = prepared.dataset, prepared.contract
    if dataset.examined is not None:
        mlflow.log_text(dataset.examined.markdown(dataset.path.name), "data/report.md")
        mlflow.log_text(dataset.examined.to_json(), "data/report.json")
    columns = [*contract.names, contract.target]
    frame = dataset.frame[columns]
    # The runs table's Dataset column and the compare view show the name and MLflow's digest
    # of the rows; the source is the file, whose SHA-256 is the data_sha256 parameter.
    with warnings.catch_warnings():
        # MLflow's notes on a local path (two source types match it) and on integer columns in
        # the dataset's inferred schema: neither is the user's to act on.
        warnings.simplefilter("ignore", UserWarning)
        data = from_pandas(
            frame,
            source=str(dataset.path.resolve()),
            targets=contract.target,
            name=dataset.path.name,
        )
        if len(frame) > DATASET_SCHEMA_ROWS:
            # MLflow infers the dataset's schema (PandasDataset.schema, a cached property) in
            # Python over every value: 387 s of a 1M-row run on a busy 2-core machine, longer
            # than fitting the network. Given here instead; said on the run (a tag).
            data.__dict__["schema"] = dataset_schema(frame)
            mlflow.set_tag(
                "loanrisk.dataset_schema", f"types from the first {DATASET_SCHEMA_ROWS:,} rows"
            )
        mlflow.log_input(data, context="training")


def dataset_schema(frame: pd.DataFrame, rows: int = DATASET_SCHEMA_ROWS) -> Any:
    """MLflow's column schema of ``frame``: each column's type inferred from its first ``rows``
    rows (the checks have already made each column one kind), required when the whole column
    has no missing value (what MLflow would say, computed in one vectorised pass)."""
    from mlflow.models.signature import infer_signature
    from mlflow.types import ColSpec, Schema

    sampled = infer_signature(frame.head(rows)).inputs
    missing = frame.isna().any()
    return Schema(
        [ColSpec(spec.type, spec.name, required=not bool(missing[spec.name])) for spec in sampled]
    )
