"""The MLflow face of the risk model: the pyfunc wrapper, its signature, and tracking defaults.

The pyfunc runs the saved *Keras* network behind the saved preprocessing, so that
``mlflow.pyfunc.load_model`` and ``mlflow models serve`` give the reference answer, against which
the service's lean NumPy path is tested.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from .contract import FeatureContract, FeatureSpec
from .normalise import READ_AS
from .registered import RISK_MODEL_ARTIFACT
from .settings import SharedSettings

OUTPUT_COLUMN = "probability_of_default"
MODELS_PACKAGE_DIR = Path(__file__).resolve().parent


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store in the current directory."""
    return SharedSettings().tracking_uri()


def use_tracking() -> str:
    """Point the MLflow client at :func:`tracking_uri` and return the URI.

    The registry follows the tracking URI unless ``MLFLOW_REGISTRY_URI`` is set. (Not calling
    ``mlflow.set_registry_uri`` matters: it also exports that variable, which would pin the
    registry of every later run in the process to the first store.)
    """
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


class LoanRiskPyfunc(PythonModel):
    """``predict`` takes a DataFrame of raw applicant fields, returns ``probability_of_default``."""

    def load_context(self, context: Any) -> None:
        from .risk_model import KerasReference

        self.reference = KerasReference(Path(context.artifacts[RISK_MODEL_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return pd.DataFrame({OUTPUT_COLUMN: self.reference.score_frame(frame)})


def _column_type(frame: pd.DataFrame, spec: FeatureSpec) -> str | AnyType:
    """The signature type of one input. MLflow cannot hold a missing value in a boolean, nor
    cast a pandas nullable integer / float holding one (``Int64`` with ``pd.NA``) to a double,
    so those columns are typed ``any`` and the preprocessing reads their values (measured with
    MLflow 3.17: ``boolean`` or ``double`` refuse the rows of such a training file)."""
    read_as = frame.attrs.get(READ_AS, {}).get(spec.name)
    extension = read_as is not None and not isinstance(_dtype(read_as), np.dtype)
    if spec.kind == "categorical":
        if spec.representation == "boolean":
            return AnyType() if spec.nullable else "boolean"
        return "string"
    if extension:
        if spec.nullable:
            return AnyType()
        return "long" if pd.api.types.is_integer_dtype(_dtype(read_as)) else "double"
    # Integer columns stay "long" so that a DataFrame read from the training file scores as is;
    # MLflow refuses to cast int64 to double implicitly.
    return "long" if pd.api.types.is_integer_dtype(frame[spec.name]) else "double"


def _dtype(name: str) -> Any:
    try:
        return pd.api.types.pandas_dtype(name)
    except TypeError:
        return object


def signature_for(contract: FeatureContract, frame: pd.DataFrame) -> ModelSignature:
    """Input columns typed as in the training data (nullable ones optional), one probability out."""
    inputs = Schema(
        [
            ColSpec(_column_type(frame, f), f.name, required=not f.nullable)
            for f in contract.features
        ]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", OUTPUT_COLUMN)]))


# The example applicants' quantiles of each numeric input, one row each: the typical applicant
# (medians and most frequent categories) first.
EXAMPLE_QUANTILES = (0.5, 0.25, 0.75)


def input_example(frame: pd.DataFrame, contract: FeatureContract, rows: int = 3) -> pd.DataFrame:
    """Up to three SYNTHETIC applicants made from the training rows' distribution, typed as the
    signature expects: row ``i`` takes each numeric input's ``EXAMPLE_QUANTILES[i]`` (an observed
    value: the nearest-rank quantile, so an integer column stays integral) and each categorical
    input's ``i``-th most frequent value.

    Published wherever the model is (MLflow's input example, the OpenAPI example at ``/docs``, the
    model's self-test applicant), so it is never a row of the file: in a lender's deployment a
    row is a customer's record. Raises ValueError if an input has no value at all.
    """
    count = min(rows, len(EXAMPLE_QUANTILES))
    columns: dict[str, list[Any]] = {}
    for spec in contract.features:
        observed = frame[spec.name].dropna()
        if observed.empty:
            raise ValueError(f"input {spec.name!r} has no values to make an example from")
        if spec.kind == "numeric":
            values = np.quantile(
                observed.to_numpy(), EXAMPLE_QUANTILES[:count], method="nearest"
            ).tolist()
        else:
            common = observed.astype(object).value_counts(sort=True).index.tolist()
            values = [common[i % len(common)] for i in range(count)]
            if spec.representation == "boolean":
                values = [bool(v) for v in values]
            else:
                values = [str(v) for v in values]
        columns[spec.name] = values
    example = pd.DataFrame(columns, columns=contract.names)
    for spec in contract.categorical:  # as the file's text and booleans: Python objects
        example[spec.name] = pd.Series(columns[spec.name], dtype=object)
    return example


def pip_requirements() -> list[str]:
    """Pinned to what trained the model, so a served copy computes the same numbers."""
    packages = ["mlflow", "tensorflow-cpu", "keras", "numpy", "pandas"]
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pins.append(package)
    return pins


def log_risk_model(
    model_dir: Path, contract: FeatureContract, training_rows: pd.DataFrame
) -> mlflow.models.model.ModelInfo:
    """Log the model directory as a pyfunc model under the active run."""
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODELS_PACKAGE_DIR / "pyfunc_model.py"),
        artifacts={RISK_MODEL_ARTIFACT: str(model_dir)},
        code_paths=[str(MODELS_PACKAGE_DIR)],
        signature=signature_for(contract, training_rows),
        input_example=input_example(training_rows, contract),
        pip_requirements=pip_requirements(),
    )
