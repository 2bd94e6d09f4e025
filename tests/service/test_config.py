"""Every setting of the service is documented where operators look for it."""

from pathlib import Path

import pytest

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


def test_the_service_and_training_read_the_shared_variables_through_one_base(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from models.mlflow_flavor import tracking_uri
    from models.settings import SharedSettings, TrainingSettings
    from training.registry import model_name
    from training.stages.options import TrainOptions

    assert issubclass(Settings, SharedSettings) and issubclass(TrainingSettings, SharedSettings)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    # Set after import: nothing is read at import time.
    monkeypatch.setenv("LOANRISK_MODEL_NAME", "other-model")
    monkeypatch.setenv("LOANRISK_EXPERIMENT", "other-experiment")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.test:5001")
    monkeypatch.setenv("MLFLOW_PORT", "5002")
    assert Settings().model_name == model_name() == "other-model"
    assert Settings().mlflow_tracking_uri == tracking_uri() == "http://mlflow.test:5001"
    options = TrainOptions()
    assert (options.register_as, options.experiment) == ("other-model", "other-experiment")
    assert TrainingSettings().mlflow_port == 5002


def test_a_bad_mlflow_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from models.settings import TrainingSettings

    monkeypatch.setenv("MLFLOW_PORT", "70000")
    with pytest.raises(ValidationError, match="MLFLOW_PORT"):
        TrainingSettings()
