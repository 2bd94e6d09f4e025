"""``loanrisk score``'s exit codes and summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cli.score import EXIT_REJECTS, EXIT_USAGE, score
from tests.conftest import TrainedStore

pytestmark = pytest.mark.slow


def invoke(*args: str):
    app = typer.Typer()
    app.command(name="score")(score)
    app.command(name="other")(lambda: None)  # more than one command: "score" is a subcommand
    return CliRunner().invoke(app, ["score", *args])


def test_exit_codes_say_whether_rows_were_refused(
    registered: TrainedStore, book: pd.DataFrame, tmp_path: Path
) -> None:
    clean = tmp_path / "clean.csv"
    book.to_csv(clean, index=False)
    result = invoke("--input", str(clean), "--output", str(tmp_path / "a.parquet"))
    assert result.exit_code == 0, result.output
    assert f"scored {len(book)} of {len(book)} rows" in result.output

    dirty = tmp_path / "dirty.csv"
    book.astype({"Income": object}).assign(Income=["-1"] + ["100"] * (len(book) - 1)).to_csv(
        dirty, index=False
    )
    result = invoke(
        "--input", str(dirty), "--output", str(tmp_path / "b.csv"), "--id-column", "loan_id"
    )
    assert result.exit_code == EXIT_REJECTS, result.output
    assert "rejected: 1 rows" in result.output
    assert (tmp_path / "b.rejects.csv").is_file()

    for args in (
        ["--input", str(tmp_path / "absent.csv"), "--output", str(tmp_path / "c.parquet")],
        ["--input", str(clean), "--output", str(tmp_path / "c.json")],
        ["--input", str(clean), "--output", str(tmp_path / "c.csv"), "--engine", "dask"],
        ["--input", str(clean), "--output", str(tmp_path / "c.csv"), "--model", "models:/nope@x"],
    ):
        result = invoke(*args)
        assert result.exit_code == EXIT_USAGE, (args, result.output)
    assert not list(tmp_path.glob("c.*"))


def test_a_file_arrow_cannot_read_is_one_line_and_exit_2(
    registered: TrainedStore, book: pd.DataFrame, tmp_path: Path
) -> None:
    not_parquet = tmp_path / "book.parquet"
    book.to_csv(not_parquet, index=False)  # a CSV under a Parquet name
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    short_line = tmp_path / "short.csv"
    book.to_csv(short_line, index=False)
    with short_line.open("a") as file:
        file.write("1,2,3\n")
    for source in (not_parquet, empty, short_line):
        result = invoke("--input", str(source), "--output", str(tmp_path / "out.parquet"))
        assert result.exit_code == EXIT_USAGE, (source, result.output)
        assert f"error: {source} cannot be read: " in result.output
        assert "Traceback" not in result.output
    assert not list(tmp_path.glob("out*"))
