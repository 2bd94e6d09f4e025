"""``score_file`` against the service: the same answers and the same refusals, in bounded chunks."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from batch.files import ScoringInputError, score_file
from batch.service_path import ServicePath, resolve_model
from tests.conftest import TrainedStore, applicant_payload

pytestmark = pytest.mark.slow

MODEL_URI = "models:/loan-default@champion"


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"loan_id": str}, keep_default_na=False)
    return pq.read_table(path).to_pandas()


def run(tmp_path: Path, source: Path, output: Path, **options) -> object:
    model = resolve_model(MODEL_URI, tmp_path)
    return score_file(
        source, output, ServicePath(model.directory), model.name, model.version, **options
    )


@pytest.mark.parametrize(
    ("source_suffix", "output_suffix"), [(".csv", ".parquet"), (".parquet", ".csv")]
)
def test_rows_get_the_answers_of_the_batch_route(
    registered: TrainedStore,
    client: TestClient,
    book: pd.DataFrame,
    tmp_path: Path,
    source_suffix: str,
    output_suffix: str,
) -> None:
    source = write(book, tmp_path / f"book{source_suffix}")
    output = tmp_path / f"scored{output_suffix}"
    summary = run(tmp_path, source, output, id_columns=["loan_id"], chunk_rows=100)
    assert (summary.rows, summary.scored, summary.rejected) == (len(book), len(book), 0)
    scored = read(output)
    assert scored["loan_id"].tolist() == book["loan_id"].tolist()
    assert scored["row"].tolist() == list(range(len(book)))

    names = client.get("/v1/model").json()["contract"]["features"]
    names = [feature["name"] for feature in names]
    for start in range(0, len(book), 100):  # the same rows in the same chunks
        applicants = [
            applicant_payload(row, names) for _, row in book.iloc[start : start + 100].iterrows()
        ]
        response = client.post("/v1/score/batch", json={"applicants": applicants})
        assert response.status_code == 200, response.text
        for offset, answer in enumerate(response.json()["results"]):
            row = scored.iloc[start + offset]
            assert math.isclose(
                row["probability_of_default"], answer["probability_of_default"], abs_tol=1e-7
            )
            assert row["score"] == pytest.approx(answer["score"], abs=0.011)
            assert row["risk_band"] == answer["risk_band"]
            assert row["decision"] == answer["decision"]
            reasons = json.loads(row["reason_codes"])
            assert [r["feature"] for r in reasons] == [r["feature"] for r in answer["reason_codes"]]
            assert [r["message"] for r in reasons] == [r["message"] for r in answer["reason_codes"]]
            assert [r["value"] for r in reasons] == [r["value"] for r in answer["reason_codes"]]
            assert row["model_name"] == answer["model"]["name"]
            assert str(row["model_version"]) == answer["model"]["version"]


def test_one_applicant_scores_as_post_score(
    registered: TrainedStore, client: TestClient, book: pd.DataFrame, tmp_path: Path
) -> None:
    one = book.iloc[[7]]
    output = tmp_path / "one.parquet"
    run(tmp_path, write(one, tmp_path / "one.csv"), output)
    row = read(output).iloc[0]
    names = [f["name"] for f in client.get("/v1/model").json()["contract"]["features"]]
    answer = client.post("/v1/score", json=applicant_payload(one.iloc[0], names)).json()
    assert math.isclose(
        row["probability_of_default"], answer["probability_of_default"], abs_tol=1e-7
    )
    assert row["score"] == pytest.approx(answer["score"], abs=0.011)
    assert (row["risk_band"], row["decision"]) == (answer["risk_band"], answer["decision"])
    reasons = json.loads(row["reason_codes"])
    for ours, theirs in zip(reasons, answer["reason_codes"], strict=True):
        assert ours["contribution"] == pytest.approx(theirs["contribution"], abs=1e-5)
        assert {**ours, "contribution": 0} == {**theirs, "contribution": 0}


BAD_CELLS = [
    ("Income", "-5"),
    ("Debt", "lots"),
    ("Seniority", ""),
    ("Home", "x" * 201),
    ("Amount", "inf"),
    ("Expenses", "1e400"),
]


def test_refused_rows_carry_the_services_message_and_the_rest_are_scored(
    registered: TrainedStore, client: TestClient, book: pd.DataFrame, tmp_path: Path
) -> None:
    frame = book.astype({name: object for name, _ in BAD_CELLS})
    bad_rows = {}
    for index, (name, text) in enumerate(BAD_CELLS):
        row = 10 + 20 * index
        frame.loc[row, name] = text
        bad_rows[row] = (name, text)
    frame.loc[200, ["Income", "Debt"]] = ["-1", "x"]  # two fields: the message counts the second
    bad_rows[200] = None
    source = tmp_path / "dirty.csv"
    frame.to_csv(source, index=False)
    output = tmp_path / "scored.parquet"
    summary = run(tmp_path, source, output, id_columns=["loan_id"], chunk_rows=64)
    assert (summary.scored, summary.rejected) == (len(book) - len(bad_rows), len(bad_rows))
    assert summary.rejects == tmp_path / "scored.rejects.csv"
    rejects = pd.read_csv(summary.rejects, keep_default_na=False).set_index("row")
    assert sorted(rejects.index) == sorted(bad_rows)
    assert set(read(output)["row"]).isdisjoint(bad_rows)

    names = [f["name"] for f in client.get("/v1/model").json()["contract"]["features"]]
    for row in bad_rows:
        # The body a client would send for the row: its text parsed as JSON numbers would be.
        body = {}
        for name in names:
            value = frame.loc[row, name]
            if isinstance(value, str) and name not in ("Home", "Records", "Job", "Marital"):
                with contextlib.suppress(ValueError):
                    value = float(value)
            if value == "" or (isinstance(value, float) and math.isnan(value)):
                continue
            body[name] = value.item() if hasattr(value, "item") else value
        response = client.post(
            "/v1/score", content=json.dumps(body), headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert rejects.loc[row, "error"] == error["message"], (
            rejects.loc[row, "details"],
            json.dumps(body),
        )
        assert json.loads(rejects.loc[row, "details"]) == error["details"]
        assert rejects.loc[row, "loan_id"] == book.loc[row, "loan_id"]


def test_chunk_size_and_format_do_not_change_answers(
    registered: TrainedStore, book: pd.DataFrame, tmp_path: Path
) -> None:
    csv_source = write(book, tmp_path / "book.csv")
    parquet_source = write(book, tmp_path / "book.parquet")
    whole = read_result(run(tmp_path, csv_source, tmp_path / "a.parquet", chunk_rows=10_000))
    small = read_result(run(tmp_path, parquet_source, tmp_path / "b.csv", chunk_rows=7))
    pd.testing.assert_series_equal(
        whole["probability_of_default"], small["probability_of_default"], atol=1e-7, rtol=0
    )
    for column in ("risk_band", "decision", "model_name"):
        assert whole[column].tolist() == small[column].tolist()


def read_result(summary) -> pd.DataFrame:
    return read(summary.output)


def test_a_file_lacking_an_input_column_is_refused_before_writing(
    registered: TrainedStore, book: pd.DataFrame, tmp_path: Path
) -> None:
    source = write(book.drop(columns=["Seniority"]), tmp_path / "book.csv")
    output = tmp_path / "scored.parquet"
    with pytest.raises(ScoringInputError, match="Seniority"):
        run(tmp_path, source, output)
    # An optional input may be empty in a row, but its column may not be absent: scoring would
    # quietly treat every applicant's as missing.
    optional = write(book.drop(columns=["Income"]), tmp_path / "no-income.parquet")
    with pytest.raises(ScoringInputError, match=r"'Income' \(optional: may be empty, not absent\)"):
        run(tmp_path, optional, output)
    renamed = write(book.rename(columns={"Income": "income "}), tmp_path / "renamed.parquet")
    with pytest.raises(ScoringInputError, match=r"the file has 'income ': names must match"):
        run(tmp_path, renamed, output)
    with pytest.raises(ScoringInputError, match="id columns"):
        run(tmp_path, write(book, tmp_path / "ok.csv"), output, id_columns=["nope"])
    assert list(tmp_path.glob("scored*")) == [] and list(tmp_path.glob(".scored*")) == []


def test_a_failed_run_leaves_no_output(
    registered: TrainedStore, book: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch.chunks import ChunkScorer

    original = ChunkScorer.score
    calls = []

    def failing(self, batch, first_row=0):
        calls.append(first_row)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, batch, first_row)

    monkeypatch.setattr(ChunkScorer, "score", failing)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path, write(book, tmp_path / "book.csv"), tmp_path / "out.parquet", chunk_rows=50)
    assert len(calls) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]


def test_a_category_column_of_codes_is_refused_not_scored_as_unknown(
    registered: TrainedStore, book: pd.DataFrame, tmp_path: Path
) -> None:
    codes = book.assign(Home=book["Home"].astype("category").cat.codes.astype("int64"))
    source = write(codes, tmp_path / "coded.parquet")
    with pytest.raises(
        ScoringInputError, match=r"column 'Home': none of its .* encoded differently"
    ):
        run(tmp_path, source, tmp_path / "scored.parquet")
    assert not list(tmp_path.glob("scored*"))
    # A few unseen categories among known ones are scored as the service scores them.
    some = book.astype({"Home": object})
    some.loc[:4, "Home"] = "houseboat"
    summary = run(tmp_path, write(some, tmp_path / "some.parquet"), tmp_path / "ok.parquet")
    assert summary.rejected == 0 and summary.scored == len(book)
