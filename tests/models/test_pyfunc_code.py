"""The code shipped inside the registered model runs beside another top-level ``models``.

A Spark executor or a user's process often has a ``models`` of its own (a Django app, another
project); the model's code must load and score all the same, and leave theirs in place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import CREDIT_DATA, TrainedStore

pytestmark = pytest.mark.slow

MODEL_URI = "models:/loan-default@champion"

SCRIPT = """
import json, sys
import pandas as pd
import models  # theirs: first on sys.path, imported before the model loads
assert models.THEIRS, models.__file__
import mlflow
rows = pd.read_parquet(sys.argv[1])
predicted = mlflow.pyfunc.load_model(sys.argv[2]).predict(rows)["probability_of_default"]
import models
assert models.THEIRS, "the model replaced the process's own models package"
print(json.dumps(predicted.tolist()))
"""


def test_the_registered_model_loads_beside_another_models_package(
    use_trained_store: TrainedStore, tmp_path: Path
) -> None:
    import mlflow

    from models.mlflow_flavor import use_tracking

    use_tracking()
    rows = pd.read_csv(CREDIT_DATA).drop(columns=["Status"]).dropna().head(20)
    expected = mlflow.pyfunc.load_model(MODEL_URI).predict(rows)["probability_of_default"]

    theirs = tmp_path / "elsewhere" / "models"
    theirs.mkdir(parents=True)
    (theirs / "__init__.py").write_text("THEIRS = True\n")
    (theirs / "mlflow_flavor.py").write_text("raise ImportError('not the loanrisk code')\n")
    data = tmp_path / "rows.parquet"
    rows.to_parquet(data)
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), MODEL_URI],
        env={**os.environ, "PYTHONPATH": str(theirs.parent)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    got = json.loads(ran.stdout.strip().splitlines()[-1])
    assert got == pytest.approx(expected.tolist(), abs=1e-7)
