"""MLflow models-from-code entry point: MLflow runs this file to build the pyfunc model.

Logging the model by file path rather than by a pickled object keeps the registered model free of
CloudPickle, so loading it never deserialises arbitrary code.
"""

import mlflow

from models.mlflow_flavor import LoanRiskPyfunc

mlflow.models.set_model(LoanRiskPyfunc())
