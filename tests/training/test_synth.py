import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from cli.synth import synth
from models.contract import Schema
from models.preprocessing import Preprocessor
from training.data import load_dataset
from training.synth import (
    BLOCK_ROWS,
    CATEGORIES,
    COLUMNS,
    FEATURES,
    MAX_ROWS,
    METADATA_KEY,
    PROTECTED,
    SynthError,
    _draw,
    block_ranges,
    default_probability,
    generate,
    write_synthetic,
)


def frame_of(seed: int, rows: int, block_rows: int = BLOCK_ROWS) -> tuple[pd.DataFrame, np.ndarray]:
    blocks = list(generate(seed, rows, block_rows))
    frame = pa.concat_tables([b.table for b in blocks]).to_pandas()
    return frame, np.concatenate([b.probability for b in blocks])


@pytest.fixture(scope="module")
def book() -> tuple[pd.DataFrame, np.ndarray]:
    return frame_of(seed=7, rows=120_000)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_same_seed_writes_an_identical_file(tmp_path: Path, suffix: str) -> None:
    first = write_synthetic(tmp_path / "a" / f"book{suffix}", 2_500, seed=11, block_rows=1_000)
    again = write_synthetic(tmp_path / "b" / f"book{suffix}", 2_500, seed=11, block_rows=1_000)
    other = write_synthetic(tmp_path / "c" / f"book{suffix}", 2_500, seed=12, block_rows=1_000)
    assert first.path.read_bytes() == again.path.read_bytes()
    assert first.schema_path.read_bytes() == again.schema_path.read_bytes()
    assert first.path.read_bytes() != other.path.read_bytes()


def test_columns_ranges_and_missing_values(book: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, _ = book
    assert tuple(frame.columns) == COLUMNS
    assert frame["credit_score"].between(300, 850).all()
    assert frame["annual_income"].min() >= 6_000
    assert frame["loan_amount"].between(1_000, 40_000).all()
    assert (frame["loan_amount"] % 25 == 0).all()
    assert set(frame["term_months"]) == {36, 60}
    assert frame["debt_to_income"].between(0, 95).all()
    assert (frame["delinquencies_2y"] >= 0).all() and (frame["credit_history_years"] >= 0).all()
    for name, labels in CATEGORIES.items():
        assert set(frame[name]) == set(labels), name
    # Blank employment lengths, as in real files; nothing else is missing.
    assert 0.03 < frame["employment_length"].isna().mean() < 0.15
    assert frame.drop(columns="employment_length").notna().all().all()
    assert frame["loan_id"].is_unique
    assert frame["loan_id"].str.startswith("SYN-").all()
    assert frame["loan_id"].iloc[0] == "SYN-0000000001"
    assert 0.10 < (frame["default"] == "yes").mean() < 0.25


def test_marginals_and_correlations_look_like_a_loan_book(
    book: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, _ = book
    income = frame["annual_income"].astype(float)
    # Lognormal income: right-skewed in dollars, roughly symmetric in logs.
    assert income.skew() > 1.5 and abs(np.log(income).skew()) < 0.5
    assert 35_000 < income.median() < 65_000
    assert 640 < frame["credit_score"].mean() < 720
    ranks = frame[["credit_score", "delinquencies_2y", "debt_to_income", "annual_income"]].corr(
        method="spearman"
    )
    assert ranks.loc["credit_score", "delinquencies_2y"] < -0.3
    assert ranks.loc["annual_income", "debt_to_income"] < -0.1
    assert ranks.loc["credit_score", "annual_income"] > 0.1
    history = frame.groupby("age_band")["credit_history_years"].median()
    assert history["18-24"] < history["35-44"] < history["55-64"]
    # Protected attributes correlate mildly with inputs, as in real books.
    by_sex = frame.groupby("sex")["annual_income"].median()
    assert 0.8 < by_sex["female"] / by_sex["male"] < 1.0


def test_block_ranges_cover_the_rows_once() -> None:
    assert list(block_ranges(250_001, 100_000)) == [
        (0, 100_000),
        (100_000, 100_000),
        (200_000, 50_001),
    ]
    assert list(block_ranges(3, 100_000)) == [(0, 3)]
    assert list(block_ranges(2_000, 1_000)) == [(0, 1_000), (1_000, 1_000)]
    with pytest.raises(SynthError):
        block_ranges(10, 0)


def test_a_larger_book_starts_with_the_smaller_one() -> None:
    small = [b.table for b in generate(3, 3_000, block_rows=1_000)]
    large = [b.table for b in generate(3, 3_500, block_rows=1_000)]
    assert [t.num_rows for t in large] == [1_000, 1_000, 1_000, 500]
    assert all(s.equals(t) for s, t in zip(small, large[:3], strict=True))
    assert large[3]["loan_id"][0].as_py() == "SYN-0000003001"


def test_blocks_are_drawn_lazily_so_memory_is_one_block() -> None:
    # A book of ten billion rows: only the first block is ever drawn.
    first = list(itertools.islice(generate(0, MAX_ROWS, block_rows=1_000), 2))
    assert [b.table.num_rows for b in first] == [1_000, 1_000]
    assert first[1].table["loan_id"][0].as_py() == "SYN-0000001001"


def test_parquet_holds_one_row_group_per_block_and_says_it_is_synthetic(tmp_path: Path) -> None:
    result = write_synthetic(tmp_path / "book.parquet", 2_500, seed=4, block_rows=1_000)
    metadata = pq.ParquetFile(result.path).metadata
    assert metadata.num_rows == 2_500
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [
        1_000,
        1_000,
        500,
    ]
    record = json.loads(pq.read_schema(result.path).metadata[METADATA_KEY])
    assert record["name"] == "loanrisk synth" and record["seed"] == 4 and record["rows"] == 2_500
    assert result.blocks == 3
    assert not list(tmp_path.glob(".*partial"))


def test_csv_and_parquet_hold_the_same_values(tmp_path: Path) -> None:
    csv = write_synthetic(tmp_path / "book.csv", 3_000, seed=5, block_rows=1_000)
    parquet = write_synthetic(tmp_path / "book.parquet", 3_000, seed=5, block_rows=1_000)
    assert csv.defaults == parquet.defaults
    pd.testing.assert_frame_equal(pd.read_csv(csv.path), pd.read_parquet(parquet.path))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_training_loader_accepts_the_file_and_its_schema(tmp_path: Path, suffix: str) -> None:
    result = write_synthetic(tmp_path / f"book{suffix}", 3_000, seed=6)
    document = json.loads(result.schema_path.read_text())
    assert document["synthetic"] is True
    assert document["generator"]["seed"] == 6 and document["generator"]["version"] >= 1
    schema = Schema.load(result.schema_path)
    assert schema.target == "default" and schema.positive_label == "yes"

    dataset = load_dataset(result.path)  # finds <stem>.schema.json by itself, as `train` does
    contract = dataset.contract
    assert contract.names == list(FEATURES)
    assert contract.protected == PROTECTED and contract.dropped == ("loan_id",)
    assert not set(PROTECTED) & set(contract.names)
    assert contract.feature("credit_score").maximum == 850
    assert contract.feature("employment_length").nullable
    assert dataset.y.sum() == result.defaults
    encoded = Preprocessor.fit(dataset.features, contract).transform(dataset.features)
    assert encoded.shape[0] == 3_000 and np.isfinite(encoded).all()


def test_default_probability_from_the_file_equals_the_generator_s(tmp_path: Path) -> None:
    result = write_synthetic(tmp_path / "book.csv", 2_500, seed=8, block_rows=1_000)
    _, probability = frame_of(seed=8, rows=2_500, block_rows=1_000)
    frame = pd.read_csv(result.path).drop(columns=list(PROTECTED))
    np.testing.assert_allclose(default_probability(frame), probability, rtol=1e-12)


def test_the_outcome_does_not_depend_on_protected_attributes(
    book: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, probability = book
    # The true probability needs no protected column ...
    np.testing.assert_array_equal(
        default_probability(frame.drop(columns=list(PROTECTED))), probability
    )
    # ... and given it, group membership says nothing more about the outcome (a direct effect
    # of 0.3 on the logit would be found at this size).
    y = (frame["default"] == "yes").to_numpy()
    groups = pd.get_dummies(frame[list(PROTECTED)], drop_first=True, dtype=float)
    logit = np.log(probability / (1 - probability))
    x = np.column_stack([logit, groups.to_numpy()])
    model = LogisticRegression(C=1e6, max_iter=1_000).fit(x, y)
    assert model.coef_[0][0] == pytest.approx(1.0, abs=0.1)
    assert np.abs(model.coef_[0][1:]).max() < 0.1


@pytest.mark.slow
def test_the_signal_is_there_and_partly_non_linear(book: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, probability = book
    y = (frame["default"] == "yes").to_numpy()
    train, test = slice(0, 60_000), slice(60_000, None)
    features = frame[list(FEATURES)].copy()
    linear = features.copy()
    linear["employment_length_missing"] = linear["employment_length"].isna().astype(float)
    linear["employment_length"] = linear["employment_length"].fillna(0.0)
    linear = pd.get_dummies(linear, dtype=float)
    linear = ((linear - linear.mean()) / linear.std()).to_numpy()
    logistic = LogisticRegression(max_iter=2_000).fit(linear[train], y[train])
    for name in ("employment_type", "home_ownership", "purpose"):
        features[name] = features[name].astype("category")
    # One OpenMP thread: measured 2 s, against 47 s with two threads spinning on a shared machine.
    with threadpool_limits(limits=1):
        boosted = HistGradientBoostingClassifier(
            categorical_features="from_dtype", max_iter=60, random_state=0
        ).fit(features.iloc[train], y[train])

    truth_auc = roc_auc_score(y[test], probability[test])
    linear_auc = roc_auc_score(y[test], logistic.predict_proba(linear[test])[:, 1])
    boosted_auc = roc_auc_score(y[test], boosted.predict_proba(features.iloc[test])[:, 1])
    assert truth_auc > 0.8
    assert linear_auc < boosted_auc - 0.005 < truth_auc


def test_draw_by_columns_matches_cumsum_over_rows() -> None:
    rng = np.random.default_rng(0)
    weights = rng.random((5_000, 5)) * (rng.random((5_000, 5)) > 0.2)
    weights[:, 0] += 1e-3
    u = rng.random(5_000)
    cumulative = np.cumsum(weights, axis=1)
    expected = ((u * cumulative[:, -1])[:, None] >= cumulative[:, :-1]).sum(axis=1)
    columns = [np.ascontiguousarray(weights[:, j]) for j in range(5)]
    np.testing.assert_array_equal(_draw(u, columns), expected)
    shares = [0.2, 0.5, 0.3]
    codes = _draw(u, shares)
    np.testing.assert_array_equal(codes, np.searchsorted(np.cumsum(shares), u * 1.0, "right"))


@pytest.mark.parametrize(
    ("name", "rows", "seed", "fmt", "message"),
    [
        ("book.csv", 0, 0, None, "rows must be"),
        ("book.csv", 10, -1, None, "seed must be"),
        ("book.txt", 10, 0, None, "cannot tell the format"),
        ("book.csv", 10, 0, "parquet", "does not match"),
        ("book.csv", 10, 0, "json", "csv or parquet"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path: Path, name: str, rows: int, seed: int, fmt: str | None, message: str
) -> None:
    with pytest.raises(SynthError, match=message):
        write_synthetic(tmp_path / name, rows, seed=seed, fmt=fmt)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_run_leaves_no_file(tmp_path: Path) -> None:
    def interrupt(rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_synthetic(tmp_path / "book.parquet", 3_000, block_rows=1_000, progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_format_flag_names_a_file_without_a_known_suffix(tmp_path: Path) -> None:
    result = write_synthetic(tmp_path / "book.dat", 100, fmt="parquet")
    assert pq.read_metadata(result.path).num_rows == 100
    assert result.schema_path == tmp_path / "book.schema.json"


def command_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(synth)
    app.command("other")(lambda: None)  # two commands, so `synth` is addressed by name
    return app


def test_the_command_writes_the_book_and_reports_it(tmp_path: Path) -> None:
    output = tmp_path / "book.parquet"
    result = CliRunner().invoke(
        command_app(), ["synth", "--rows", "1500", "--output", str(output), "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 1,500 synthetic applications" in result.stdout
    assert pq.read_metadata(output).num_rows == 1_500
    assert (tmp_path / "book.schema.json").is_file()


def test_the_command_refuses_a_mismatched_format_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        command_app(),
        ["synth", "--rows", "10", "--output", str(tmp_path / "b.csv"), "--format", "parquet"],
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "does not match" in lines[0]
    assert list(tmp_path.iterdir()) == []
