"""The columnar chunk path against the per-record service path, on credit_data rows with awkward
values: the same probabilities, scores, bands, decisions and reason codes.

The columnar path builds the very matrix the record path builds from the validator's records (the
same float64 values, the same categories read by the same function) and explains it in the same
128-row chunks, so its answers are compared for equality with a batch of records. Against each
applicant scored alone (``POST /v1/score``), probabilities differ by float32 rounding only (the
documented 1e-7, docs/serving.md); a row whose probability lies within that of a decision
threshold could then be decided differently, so such rows are counted and left out of the
decision comparison (there are none in this sample, which the test checks too).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from batch.chunks import ChunkScorer, check_columns
from batch.service_path import ServicePath, resolve_model
from service.schemas import RecordValidator
from tests.batch.conftest import MODEL_URI
from tests.conftest import CREDIT_DATA, TrainedStore

pytestmark = pytest.mark.slow

TOLERANCE = 1e-7  # float32 rounding between row counts (docs/serving.md)
# Blocks of 4,096 rows against one product of 6,000: up to 1e-6 in log-odds, 2.5e-7 in probability
# (docs/serving.md, "Integrated gradients a third faster").
BLOCK_TOLERANCE = 2.5e-7


def awkward_book(rows: int = 3000) -> pd.DataFrame:
    """credit_data rows, as text, with missing values, unknown and padded categories, values on
    and beyond the contract's bounds (the refused ones are rejected and left out)."""
    frame = pd.read_csv(CREDIT_DATA, dtype=str, keep_default_na=False)
    frame = frame.sample(rows, replace=True, random_state=3).reset_index(drop=True)
    rng = np.random.default_rng(5)
    for name in frame.columns:
        at = rng.random(rows)
        frame.loc[at < 0.01, name] = ""  # missing (refused where required)
        frame.loc[(at >= 0.01) & (at < 0.02), name] = "zzz-unknown"  # unseen / not a number
        frame.loc[(at >= 0.02) & (at < 0.03), name] = " " + frame[name] + " "  # padded
        frame.loc[(at >= 0.03) & (at < 0.04), name] = "0"  # a boundary
        frame.loc[(at >= 0.04) & (at < 0.045), name] = "1e9"  # huge but valid where no maximum
    return frame


def test_columns_answer_as_records(registered: TrainedStore, tmp_path) -> None:
    model = resolve_model(MODEL_URI, tmp_path)
    path = ServicePath(model.directory, reasons=4)
    scorer = ChunkScorer(path, model.name, model.version)
    book = awkward_book()
    batch = pa.RecordBatch.from_pandas(book, preserve_index=False)
    scored, rejects = scorer.score(batch)
    assert scored.num_rows > 1500 and rejects.num_rows > 0  # both kinds present

    checked = check_columns(batch, path.contract.features)
    validator = RecordValidator(path.contract, batch_max=1)
    kept = scored.column("row").to_pylist()
    records = [validator.one(json.dumps(checked.body(row))) for row in kept]

    probabilities, reasons, scores, bands, decisions = path.assess(records)
    # One BLAS thread (the columnar path) and several round float32 products differently.
    ours_p = np.asarray(scored.column("probability_of_default").to_pylist())
    assert np.abs(ours_p - probabilities).max() <= TOLERANCE
    assert scored.column("risk_band").to_pylist() == bands
    assert scored.column("decision").to_pylist() == decisions
    assert np.allclose(scored.column("score").to_pylist(), scores, atol=0.011, rtol=0)
    for ours_json, theirs_json in zip(
        scored.column("reason_codes").to_pylist(), reasons, strict=True
    ):
        ours_r, theirs_r = json.loads(ours_json), json.loads(theirs_json)
        assert [{**r, "contribution": 0} for r in ours_r] == [
            {**r, "contribution": 0} for r in theirs_r
        ]
        for r, t in zip(ours_r, theirs_r, strict=True):
            assert r["contribution"] == pytest.approx(t["contribution"], abs=1e-5)

    # Each applicant alone, as POST /v1/score takes them (a sample: one call each).
    policy = path.policy
    near_threshold = 0
    for index in range(0, len(records), 10):
        alone, alone_reasons, alone_scores, alone_bands, alone_decisions = path.assess(
            [records[index]]
        )
        ours = probabilities[index]
        assert math.isclose(ours, alone[0], abs_tol=TOLERANCE)
        if any(
            abs(ours - bound) <= TOLERANCE
            for bound in (policy.approve_below, policy.decline_at, *(b for _, b in policy.bands))
        ):
            near_threshold += 1
            continue
        assert (bands[index], decisions[index]) == (alone_bands[0], alone_decisions[0])
        assert scores[index] == pytest.approx(alone_scores[0], abs=0.011)
        ours_reasons, theirs = json.loads(reasons[index]), json.loads(alone_reasons[0])
        assert [(r["feature"], r["value"], r["message"]) for r in ours_reasons] == [
            (r["feature"], r["value"], r["message"]) for r in theirs
        ]
    assert near_threshold == 0


def test_columns_answer_as_records_without_reasons(registered: TrainedStore, tmp_path) -> None:
    model = resolve_model(MODEL_URI, tmp_path)
    path = ServicePath(model.directory, reasons=0)
    scorer = ChunkScorer(path, model.name, model.version)
    book = awkward_book(9000)  # more than one 4,096-row scoring block
    batch = pa.RecordBatch.from_pandas(book, preserve_index=False)
    scored, _ = scorer.score(batch)
    checked = check_columns(batch, path.contract.features)
    validator = RecordValidator(path.contract, batch_max=1)
    records = [validator.one(json.dumps(checked.body(r))) for r in scored.column("row").to_pylist()]
    probabilities, reasons, scores, bands, decisions = path.assess(records)
    ours = np.asarray(scored.column("probability_of_default").to_pylist())
    # Blocks of 4,096 rows against one product of all: float32 rounding only.
    assert np.abs(ours - probabilities).max() <= BLOCK_TOLERANCE
    policy = path.policy
    bounds = np.array([policy.approve_below, policy.decline_at, *(b for _, b in policy.bands)])
    clear = np.abs(probabilities[:, None] - bounds[None, :]).min(axis=1) > BLOCK_TOLERANCE
    # Rows this close to a threshold may fall either side of it: left out, and few.
    assert clear.sum() >= len(clear) - 5
    ours_decisions = np.asarray(scored.column("decision").to_pylist(), dtype=object)
    ours_bands = np.asarray(scored.column("risk_band").to_pylist(), dtype=object)
    assert (ours_decisions[clear] == np.asarray(decisions, dtype=object)[clear]).all()
    assert (ours_bands[clear] == np.asarray(bands, dtype=object)[clear]).all()
    assert np.allclose(scored.column("score").to_pylist(), scores, atol=0.011, rtol=0)
    assert set(scored.column("reason_codes").to_pylist()) == set(reasons) == {"[]"}
