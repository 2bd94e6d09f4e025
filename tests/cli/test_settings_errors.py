"""A setting that does not validate is one line naming it and exit 2, not a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("LOANRISK_AUDIT_DB_URL", "/var/lib/audit.db", "is not a database URL: write sqlite:////"),
        ("LOANRISK_APPROVE_BELOW", "abc", "Input should be a valid number"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(
    variable: str, value: str, said: str, tmp_path: Path
) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "monitor"],
        env={**os.environ, variable: value},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 2, ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.stderr.startswith(f"error: setting {variable}: ") and said in ran.stderr
