"""Shared fixtures: real MLflow stores in temporary directories, and a small trained model."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT_DIR = Path(__file__).resolve().parent.parent
CREDIT_DATA = PROJECT_DIR / "data" / "credit_data.csv"
LENDING_CLUB = PROJECT_DIR / "data" / "lending_club.csv"

README_APPLICANT = {
    "Seniority": 9,
    "Home": "rent",
    "Time": 60,
    "Records": "no",
    "Job": "freelance",
    "Expenses": 73,
    "Income": 129,
    "Assets": 0,
    "Debt": 0,
    "Amount": 800,
    "Price": 846,
}


ClientFactory = Callable[..., AbstractContextManager["TestClient"]]


@pytest.fixture
def make_client(tmp_path: Path) -> ClientFactory:
    """Start the app with settings overrides; the audit trail lives in this test's directory."""

    @contextmanager
    def factory(**overrides: Any) -> Iterator[TestClient]:
        from fastapi.testclient import TestClient

        from service.app import create_app
        from service.config import Settings

        settings = Settings(
            **{
                "audit_db_url": f"sqlite:///{tmp_path / 'audit.db'}",
                "reload_interval_s": 0,
                # Tests of what is answered and recorded must not race the deadline on a loaded
                # machine (a restarted writer process takes seconds); the deadline's own tests
                # (tests/service/test_audit_deadlines.py, tests/chaos) set theirs.
                "audit_timeout_ms": 30_000,
                **overrides,
            }
        )
        with TestClient(create_app(settings)) as test_client:
            yield test_client

    return factory


def forget_mlflow_uris() -> None:
    import mlflow

    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None clears it and its variable
    mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)


def clear_active_experiment() -> None:
    """Forget the experiment ``mlflow.set_experiment`` chose: it is process-wide (a module
    global and ``MLFLOW_EXPERIMENT_ID``), and its id would be looked up in another store."""
    import mlflow.tracking.fluent

    mlflow.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


@pytest.fixture(scope="session", autouse=True)
def no_mlflow_uri_from_the_outside() -> None:
    """The suite never talks to the tracking server of the shell it was started from."""
    forget_mlflow_uris()


@pytest.fixture(autouse=True)
def no_mlflow_uri_left_over() -> Iterator[None]:
    """No MLflow tracking or registry URI set during a test survives it.

    ``mlflow.set_tracking_uri`` and ``mlflow.set_registry_uri`` are process-wide and also export
    ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI``; left over, a registry chosen in one test
    would receive what later store fixtures and ``loanrisk`` subprocesses register. The variables
    are put back as they were before the test, so stores chosen by module and session fixtures
    stay in force for the tests that use them.
    """
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {name: os.environ.get(name) for name in names}
    clear_active_experiment()  # one a session fixture chose belongs to that fixture's store
    yield
    forget_mlflow_uris()
    clear_active_experiment()
    for name, value in before.items():
        if value is not None:
            os.environ[name] = value


@pytest.fixture(scope="session")
def credit_frame() -> pd.DataFrame:
    return pd.read_csv(CREDIT_DATA)


def create_empty_mlflow_db(path: Path) -> None:
    """An MLflow SQLite store at ``path`` with every table and no experiment, not even Default.

    MLflow adds the Default experiment when it opens a store that lacks one, with its artifacts
    under the working directory of whoever opens it, as it does for a new store.
    """
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("DELETE FROM experiments WHERE experiment_id = 0")


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One empty store that every store of the session starts as a copy of.

    A new store runs MLflow's schema migrations when first opened: measured 8-9 s on the loaded
    test machine (load average 9 on 2 cores), against 1.9 s to open a copy of a migrated one; a
    dozen tests and each ``loanrisk`` subprocess on a fresh store paid it.
    """
    path = tmp_path_factory.mktemp("empty-mlflow") / "mlflow.db"
    create_empty_mlflow_db(path)
    return path


def new_mlflow_db(empty_mlflow_db: Path, directory: Path) -> str:
    """A copy of the empty store in ``directory``; its URI."""
    shutil.copyfile(empty_mlflow_db, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_db: Path) -> str:
    """A fresh SQLite-backed MLflow tracking store and registry for one test."""
    uri = new_mlflow_db(empty_mlflow_db, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


@dataclass(frozen=True)
class TrainedStore:
    """A tracking store holding one registered champion fitted on a data file.

    ``result`` says which version and run: a ``training.train.TrainResult`` for a Keras training
    run, a ``tests.tiny_model.Registration`` for a tiny model; both have ``version`` and ``run_id``.
    """

    uri: str
    directory: Path
    result: Any


@pytest.fixture(scope="session")
def trained_store(
    tmp_path_factory: pytest.TempPathFactory, empty_mlflow_db: Path
) -> Iterator[TrainedStore]:
    """Train a few epochs on the bundled credit_data into a session-wide MLflow store.

    For the tests of training itself, the Keras reference path and parity; a test that only needs
    a champion to serve uses :func:`tiny_store`.
    """
    from models.network import NetworkConfig
    from training.train import TrainOptions, train

    directory = tmp_path_factory.mktemp("trained-store")
    uri = new_mlflow_db(empty_mlflow_db, directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(directory)
        result = train(
            TrainOptions(
                data=CREDIT_DATA,
                experiment="tests",
                network=NetworkConfig(epochs=4, early_stopping_patience=0),
                # A few epochs may not beat the baselines; the service tests need a champion.
                force_promote=True,
            )
        )
        yield TrainedStore(uri=uri, directory=directory, result=result)


@pytest.fixture
def use_trained_store(trained_store: TrainedStore, monkeypatch: pytest.MonkeyPatch) -> TrainedStore:
    """Point this test's MLflow client at the trained store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store.uri)
    monkeypatch.chdir(trained_store.directory)
    return trained_store


def tiny_store_of(
    directory: Path, empty_mlflow_db: Path, fit: Callable[[], tuple[Any, pd.DataFrame]]
) -> TrainedStore:
    """A store in ``directory`` whose champion is the tiny model ``fit`` returns (model, rows).

    The tracking URI and working directory are this store's only while it is written.
    """
    from tests.tiny_model import register_tiny_model

    uri = new_mlflow_db(empty_mlflow_db, directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(directory)
        model, rows = fit()
        registration = register_tiny_model(model, rows)
        forget_mlflow_uris()
    return TrainedStore(uri=uri, directory=directory, result=registration)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_db: Path) -> TrainedStore:
    """A session-wide store whose champion is a tiny model fitted on credit_data in milliseconds.

    The real contract (Age and Marital protected), preprocessing, saved directory, MLflow model,
    version and alias; a logistic regression in place of the Keras network (tests/tiny_model.py).
    """
    from tests.tiny_model import credit_model

    return tiny_store_of(
        tmp_path_factory.mktemp("tiny-store"), empty_mlflow_db, lambda: credit_model(CREDIT_DATA)
    )


@pytest.fixture
def use_tiny_store(tiny_store: TrainedStore, monkeypatch: pytest.MonkeyPatch) -> TrainedStore:
    """Point this test's MLflow client at the tiny model's store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_store.uri)
    monkeypatch.chdir(tiny_store.directory)
    return tiny_store


def applicant_payload(row: pd.Series, names: list[str]) -> dict[str, object]:
    """A JSON-ready request body from a data row: NumPy scalars unwrapped, missing ones omitted."""
    payload: dict[str, object] = {}
    for name in names:
        value = row[name]
        if pd.isna(value):
            continue
        payload[name] = value.item() if hasattr(value, "item") else value
    return payload


def champion_source(store_uri: str, name: str = "loan-default", alias: str = "champion") -> str:
    """Where the artifacts of ``name@alias`` in another store live, to register them again."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
    version = client.get_model_version_by_alias(name, alias)
    return client.get_model_version_download_uri(name, version.version)


def register_source(source: str, name: str = "loan-default", alias: str = "champion") -> str:
    """Register existing model artifacts as a new version in the store named by the environment."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = os.environ["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with contextlib.suppress(MlflowException):  # already registered
        client.create_registered_model(name)
    version = client.create_model_version(name, source=source)
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def debt_to_income_frame(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Loans whose default risk rises steeply with the debt-to-income ratio, and little else."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ratio = rng.uniform(0.0, 0.8, rows)
    years = rng.integers(0, 30, rows)
    purpose = rng.choice(["car", "home", "education", "other"], rows)
    logit = -3.0 + 7.0 * ratio - 0.02 * years
    default = rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "income": rng.lognormal(8, 0.4, rows).round(0),
            "debt_to_income": ratio.round(3),
            "years_employed": years,
            "purpose": purpose,
            "outcome": np.where(default, "default", "repaid"),
        }
    )


@pytest.fixture(scope="session")
def dti_store(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_db: Path) -> TrainedStore:
    """A tiny model fitted on :func:`debt_to_income_frame`, in its own store: other features than
    credit_data's, one of which drives the risk."""
    from tests.tiny_model import fit_tiny_model

    return tiny_store_of(
        tmp_path_factory.mktemp("dti-store"),
        empty_mlflow_db,
        lambda: fit_tiny_model(debt_to_income_frame(), "outcome", "default"),
    )
