"""Every setting of the service is documented where operators look for it."""

from pathlib import Path

from service.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme_settings_table() -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    documented = {line.split("`")[1] for line in rows}
    variables = {
        field.validation_alias if isinstance(field.validation_alias, str) else f"LOANRISK_{name}"
        for name, field in Settings.model_fields.items()
    }
    assert {v.upper() for v in variables} <= documented
