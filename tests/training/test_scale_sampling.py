"""Large data is sampled only where a sample gives the same answer, and never silently: the
baselines' sample is a parameter, a tag and a printed line — and on credit_data there is none.
Also: the blocked network logits and Keras's steps per call leave the bundled data untouched."""

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

import models.network as network_module
import training.baselines as baselines
from models.network import NetworkConfig
from models.preprocessing import Preprocessor
from tests.conftest import CREDIT_DATA
from training.fit import MANY_STEPS, STEPS_PER_EXECUTION, steps_per_execution
from training.stages.evaluate import fit_baselines
from training.stages.options import TrainOptions
from training.stages.prepare import prepare


def test_baseline_sample_is_stratified_sorted_and_only_when_large() -> None:
    y = np.array([0] * 900 + [1] * 100)
    assert baselines.baseline_sample(y, seed=0, limit=1000) is None
    sample = baselines.baseline_sample(y, seed=0, limit=200)
    assert sample is not None and len(sample) == 200
    assert np.all(np.diff(sample) > 0)
    assert y[sample].mean() == pytest.approx(0.1)
    np.testing.assert_array_equal(sample, baselines.baseline_sample(y, seed=0, limit=200))


def _baseline_run(monkeypatch: pytest.MonkeyPatch, limit: int | None) -> tuple[dict, list[str]]:
    if limit is not None:
        monkeypatch.setattr(baselines, "BASELINE_MAX_TRAIN_ROWS", limit)
    prepared = prepare(TrainOptions(data=CREDIT_DATA))
    said: list[str] = []
    # An experiment of this store only: mlflow.set_experiment would leave it active for later
    # tests, whose stores do not have it.
    experiment_id = MlflowClient().create_experiment("sampling")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        fit_baselines(prepared, threshold=0.5, seed=0, say=said.append)
    data = MlflowClient().get_run(run.info.run_id).data
    client = MlflowClient()
    # Nested runs go to the active experiment (the store's default), wherever their parent is.
    children = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        f"tags.mlflow.parentRunId = '{run.info.run_id}'",
    )
    return {"parent": data, "children": [c.data for c in children]}, said


def test_sampled_baselines_are_announced(mlflow_store: str, monkeypatch) -> None:
    runs, said = _baseline_run(monkeypatch, limit=1000)
    parent = runs["parent"]
    assert parent.params["baseline_train_rows"] == "1000"
    assert parent.tags["loanrisk.baselines_sampled"] == "true"
    assert any("stratified sample of 1,000 of 2,672 training rows" in line for line in said)
    assert sorted(c.params["train_rows"] for c in runs["children"]) == ["1000", "1000"]


def test_credit_data_baselines_are_not_sampled(mlflow_store: str, monkeypatch) -> None:
    runs, said = _baseline_run(monkeypatch, limit=None)
    assert "baseline_train_rows" not in runs["parent"].params
    assert "loanrisk.baselines_sampled" not in runs["parent"].tags
    assert not any("sample" in line for line in said)
    assert all("train_rows" not in c.params for c in runs["children"])


def test_blocked_logits_match_one_product(monkeypatch: pytest.MonkeyPatch) -> None:
    prepared = prepare(TrainOptions(data=CREDIT_DATA))
    x = Preprocessor.fit(prepared.rows("train"), prepared.contract).transform(
        prepared.dataset.features
    )
    rng = np.random.default_rng(0)
    shapes = [(x.shape[1], 64), (64, 32), (32, 1)]
    members = tuple(
        network_module.MemberWeights(
            tuple(rng.normal(size=s).astype(np.float32) / 8 for s in shapes),
            tuple(rng.normal(size=s[1]).astype(np.float32) / 8 for s in shapes),
        )
        for _ in range(3)
    )
    whole = network_module.ScoringNetwork(members).mean_logits(x)
    monkeypatch.setattr(network_module, "LOGIT_BLOCK_ROWS", 1000)
    blocked = network_module.ScoringNetwork(members).mean_logits(x)
    assert blocked.shape == whole.shape == (len(x),)
    # Only BLAS's choice of kernel by shape may differ: the last bits of a float32 logit.
    np.testing.assert_allclose(blocked, whole, rtol=1e-5, atol=1e-5)


def test_bundled_data_keeps_one_keras_step_per_call() -> None:
    prepared = prepare(TrainOptions(data=CREDIT_DATA))
    config = NetworkConfig.for_rows(len(prepared.split.train))
    assert steps_per_execution(len(prepared.split.train), config.batch_size) == 1
    large = NetworkConfig.for_rows(600_000)
    assert 600_000 // large.batch_size >= MANY_STEPS
    assert steps_per_execution(600_000, large.batch_size) == STEPS_PER_EXECUTION


def test_dataset_schema_from_a_sample_equals_mlflows_own() -> None:
    from mlflow.types.utils import _infer_schema

    from training.stages.prepare import DATASET_SCHEMA_ROWS, dataset_schema

    prepared = prepare(TrainOptions(data=CREDIT_DATA))
    contract = prepared.contract
    frame = prepared.dataset.frame[[*contract.names, contract.target]]
    assert len(frame) <= DATASET_SCHEMA_ROWS  # the bundled data keeps MLflow's own inference
    # Types from 20 rows, which have no missing value; required-ness from all rows.
    assert not frame.head(20).isna().any().any() and frame.isna().any().any()
    assert dataset_schema(frame, rows=20) == _infer_schema(frame)
