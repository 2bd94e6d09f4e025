"""MLflow models-from-code entry point: MLflow runs this file to build the pyfunc model.

Logging the model by file path rather than by a pickled object keeps the registered model free of
CloudPickle, so loading it never deserialises arbitrary code.

The project's ``models`` package travels with the model (``code_paths``: ``code/models`` beside
this file once logged). ``models`` is a common top-level name (a Django app's, another project's,
a Spark executor's own modules): a process that had already imported another ``models`` would
find that one under the name, and an executor with an older loanrisk installed would quietly run
the older code. So the shipped package is loaded under a private name made from its path (its
imports within are relative), beside whatever ``models`` the process has, and is the one this
model runs.
"""

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import mlflow


def shipped_package() -> Path:
    """``code/models`` of the logged model; when MLflow runs this file at logging time, the
    package this file sits in."""
    here = Path(__file__).resolve().parent
    logged = here / "code" / "models"
    return logged if (logged / "__init__.py").is_file() else here


def load_privately(package: Path) -> ModuleType:
    """The package at ``package`` imported as ``_loanrisk_models_<hash of its path>``."""
    name = "_loanrisk_models_" + hashlib.sha256(str(package).encode()).hexdigest()[:16]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


flavor = importlib.import_module(load_privately(shipped_package()).__name__ + ".mlflow_flavor")
mlflow.models.set_model(flavor.LoanRiskPyfunc())
