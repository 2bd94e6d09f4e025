"""``loanrisk outcomes import`` and ``loanrisk monitor`` read an existing audit store: a SQLite
file that is not there (a relative default URL, run from another directory) is an error naming
the path and the setting, never a new empty database reporting every id unknown."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

COMMANDS = {
    "import": lambda file: ["outcomes", "import", str(file)],
    "monitor": lambda file: ["monitor", "--no-mlflow"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("url", [None, "sqlite:///elsewhere/audit.db"])
def test_a_missing_sqlite_audit_file_is_an_error_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, url: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    file = tmp_path / "outcomes.csv"
    file.write_text("request_id,defaulted,observed_at\nabc,true,2025-01-01\n")
    expected = tmp_path / ("loanrisk-audit.db" if url is None else "elsewhere/audit.db")
    ran = CliRunner().invoke(app, COMMANDS[command](file), env={"LOANRISK_AUDIT_DB_URL": url})
    assert ran.exit_code == 2, ran.output
    assert ran.stdout == ""
    lines = ran.stderr.splitlines()
    assert len(lines) == 1
    assert str(expected) in lines[0] and "LOANRISK_AUDIT_DB_URL" in lines[0]
    assert list(tmp_path.iterdir()) == [file]  # no database made, nor its directory


def test_an_existing_sqlite_file_under_a_relative_url_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.audit.migrations import upgrade

    monkeypatch.chdir(tmp_path)
    upgrade("sqlite:///loanrisk-audit.db")  # as the service leaves it
    file = tmp_path / "outcomes.csv"
    file.write_text("request_id,defaulted,observed_at\nabc,true,2025-01-01\n")
    ran = CliRunner().invoke(app, COMMANDS["import"](file), env={"LOANRISK_AUDIT_DB_URL": None})
    assert ran.exit_code == 1  # the id is unknown: the store was read
    assert ran.stdout.startswith("1 rows: 0 recorded")
    assert ran.stderr == ""
