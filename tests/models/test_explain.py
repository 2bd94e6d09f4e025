import itertools
import json
import math
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from models.contract import infer_contract
from models.explain import CHUNK_ROWS, ChunkThreads, Explainer, input_gradients
from models.network import MemberWeights, ScoringNetwork
from models.preprocessing import Preprocessor


def random_stack(n_inputs: int, seed: int = 0) -> ScoringNetwork:
    rng = np.random.default_rng(seed)
    sizes = [n_inputs, 16, 8, 1]
    weights = tuple(
        (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32)
        for a, b in itertools.pairwise(sizes)
    )
    biases = tuple((rng.normal(size=b) * 0.1).astype(np.float32) for b in sizes[1:])
    return ScoringNetwork((MemberWeights(weights, biases),))


def test_input_gradients_match_finite_differences() -> None:
    stack = random_stack(6)
    x = np.random.default_rng(1).normal(size=(5, 6))
    grads = input_gradients(stack, x)
    eps = 1e-6  # small enough, in float64, not to step across a ReLU kink
    for j in range(6):
        step = np.zeros(6)
        step[j] = eps
        numeric = (stack.mean_logits(x + step) - stack.mean_logits(x - step)) / (2 * eps)
        np.testing.assert_allclose(grads[:, j], numeric, atol=1e-5)


@pytest.fixture
def small_setup() -> tuple[Explainer, Preprocessor, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "y": rng.integers(0, 2, 300),
            "income": rng.lognormal(5, 0.5, 300),
            "debt": rng.uniform(0, 100, 300),
            "home": rng.choice(["rent", "own", "parents"], 300),
        }
    )
    frame.loc[::17, "income"] = np.nan
    contract = infer_contract(frame, "y", "1")
    pre = Preprocessor.fit(frame, contract)
    stack = random_stack(pre.width, seed=3)
    baseline = pre.transform(frame).mean(axis=0)
    explainer = Explainer(contract, pre, stack, baseline, steps=64)
    return explainer, pre, frame[contract.names]


def test_contributions_add_up_to_the_change_in_log_odds(small_setup) -> None:
    explainer, pre, frame = small_setup
    x = pre.transform(frame.iloc[:20])
    contributions = explainer.contributions(x)
    base = explainer.network.mean_logits(explainer.baseline[None, :])[0]
    np.testing.assert_allclose(
        contributions.sum(axis=1), explainer.network.mean_logits(x) - base, atol=0.02
    )
    assert contributions.shape == (20, 3)


def test_reasons_are_positive_sorted_and_capped(small_setup) -> None:
    explainer, pre, frame = small_setup
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.iloc[:30].to_dict(orient="records")
    ]
    reasons = explainer.reasons(pre.transform_records(records), records, limit=2)
    assert len(reasons) == 30
    for row in reasons:
        assert len(row) <= 2
        contributions = [r["contribution"] for r in row]
        assert all(c > 0 for c in contributions)
        assert contributions == sorted(contributions, reverse=True)


def test_messages_are_plain_language(small_setup) -> None:
    explainer, _, _ = small_setup
    explainer.typical = {"debt": 50.0, "home": "rent"}
    debt = explainer.specs[[s.name for s in explainer.specs].index("debt")]
    home = explainer.specs[[s.name for s in explainer.specs].index("home")]
    income = explainer.specs[[s.name for s in explainer.specs].index("income")]
    assert explainer.message(debt, 90.0) == "Debt of 90 is higher than typical (50)"
    assert explainer.message(debt, 12.5) == "Debt of 12.50 is lower than typical (50)"
    assert explainer.message(home, "own") == "Home is 'own'"
    assert "not among the categories the model learnt" in explainer.message(home, "castle")
    assert explainer.message(income, None) == "Income was not provided"


@pytest.fixture
def chunk_threads() -> Iterator[ChunkThreads]:
    threads = ChunkThreads(helpers=2)
    yield threads
    threads.close()


def test_chunk_threads_map_in_order_across_threads(chunk_threads: ChunkThreads) -> None:
    def slow_square(n: int) -> tuple[int, str]:
        time.sleep(0.002)  # long enough for the helpers to take some of the items
        return n * n, threading.current_thread().name

    results = chunk_threads.map(slow_square, list(range(40)))
    assert [value for value, _ in results] == [n * n for n in range(40)]
    assert len({name for _, name in results}) > 1
    assert chunk_threads.map(slow_square, []) == []


def test_chunk_threads_pass_on_a_failure(chunk_threads: ChunkThreads) -> None:
    def fails_on_seven(n: int) -> int:
        if n == 7:
            raise ValueError("seven")
        return n

    with pytest.raises(ValueError, match="seven"):
        chunk_threads.map(fails_on_seven, list(range(20)))


def test_a_large_batch_explained_on_threads_matches_one_thread(
    small_setup, chunk_threads: ChunkThreads
) -> None:
    explainer, pre, frame = small_setup
    x = pre.transform(frame)  # 300 rows: three chunks
    assert len(x) > CHUNK_ROWS * 2
    alone = explainer.logits_and_contributions(x)
    shared = explainer.logits_and_contributions(x, threads=chunk_threads)
    np.testing.assert_array_equal(alone[0], shared[0])
    np.testing.assert_array_equal(alone[1], shared[1])


def test_reason_codes_as_json_are_the_reasons_serialised(small_setup) -> None:
    explainer, pre, frame = small_setup
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    # Values that need escaping in JSON, and categories the model never saw.
    records[0]["home"] = 'a "quoted" \\ home'
    records[1]["home"] = "château ☂"
    x = pre.transform_records(records)
    contributions = explainer.contributions(x)
    for limit in (1, 3):
        as_dicts = explainer.reasons_from(contributions, records, limit)
        as_json = explainer.reason_codes_json(contributions, records, limit)
        assert [json.loads(text) for text in as_json] == as_dicts
    assert any(r["feature"] == "home" for r in json.loads(as_json[0]))


def test_reason_codes_from_columns_are_those_from_records_byte_for_byte(small_setup) -> None:
    """The column-wise writer (file and Spark scoring) against the per-record one (the service)."""
    explainer, _, frame = small_setup
    rows = len(frame)
    income = frame["income"].to_numpy(dtype=np.float64).copy()
    income[1], income[2], income[3] = -0.0, 0.0, 1e-7  # signed zero, a tiny number
    home = frame["home"].astype(object).to_numpy().copy()
    home[4], home[5], home[6] = 'a "quoted" \\ home', "château ☂", None
    columns = {
        "income": income,
        "debt": frame["debt"].to_numpy(dtype=np.float64),
        "home": pd.Categorical(home),
    }
    records = [
        {
            "income": None if math.isnan(income[i]) else float(income[i]),
            "debt": float(columns["debt"][i]),
            "home": home[i],
        }
        for i in range(rows)
    ]
    rng = np.random.default_rng(11)
    # Any mix of signs: from no reason at all to every field one; ties and exact zeros too.
    contributions = rng.normal(0, 1, (rows, len(explainer.specs))).round(1).astype(np.float32)
    contributions[:10] = -1.0
    contributions[10:20] = 0.5
    contributions[1:7, explainer._names.index("income")] = 5.0  # the awkward values are reasons
    contributions[4:7, explainer._names.index("home")] = 6.0

    def forget() -> None:  # each path writes its own fragments, none left by the other
        explainer._messages.clear()
        for fragments in explainer._fragments:
            fragments.clear()

    for limit in (1, 2, 3, 4, 10):
        forget()
        by_record = explainer.reason_codes_json(contributions, records, limit)
        forget()
        assert (
            explainer.reason_codes_json_columns(contributions, columns, limit).to_pylist()
            == by_record
        )
        assert '"value":-0.0,' in by_record[1] and '"value":0.0,' in by_record[2]
        # Without a field's column, its reasons say it was not provided.
        without = explainer.reason_codes_json_columns(
            contributions, {k: v for k, v in columns.items() if k != "debt"}, limit
        ).to_pylist()
        assert without == explainer.reason_codes_json(
            contributions, [{**r, "debt": None} for r in records], limit
        )
    assert explainer.reason_codes_json_columns(contributions[:0], columns, 4).to_pylist() == []


def test_contributions_are_written_with_six_decimals_at_most(small_setup) -> None:
    explainer, pre, frame = small_setup
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    contributions = explainer.contributions(pre.transform_records(records))
    written = [
        reason["contribution"]
        for text in explainer.reason_codes_json(contributions, records, 3)
        for reason in json.loads(text)
    ]
    assert written
    # float32 contributions rounded in float32 came back as 0.849731981754303 for 0.849732
    assert all(len(repr(value).split(".")[1]) <= 6 for value in written if "e" not in repr(value))
    assert all(round(value, 6) == value for value in written)
