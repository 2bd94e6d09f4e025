"""The test stores copied from one empty store are what a new store would be."""

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import new_mlflow_db


def _schema(path: Path) -> tuple[dict[str, list[str]], list[tuple[str]]]:
    """Each table's definition as sorted lines, and the migration the store is at.

    Sorted, because MLflow's own migrations write a table's constraints in varying order: two
    stores created one after the other differ in it.
    """
    with contextlib.closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        tables = {
            name: sorted(line.strip().rstrip(",") for line in sql.splitlines())
            for name, sql in rows.fetchall()
        }
        version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return tables, version


def test_a_copied_store_equals_a_new_one_where_it_is_opened(
    empty_mlflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    new, copied = tmp_path / "new", tmp_path / "copied"
    stores = {}
    for directory in (new, copied):
        directory.mkdir()
        monkeypatch.chdir(directory)
        uri = new_mlflow_db(empty_mlflow_db, directory) if directory == copied else None
        uri = uri or f"sqlite:///{directory / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiments = client.search_experiments()
        assert [e.name for e in experiments] == ["Default"]
        # Artifacts of the Default experiment stay in this store's directory, not the template's.
        assert experiments[0].artifact_location.endswith(f"{directory.name}/mlruns/0")
        stores[directory.name] = _schema(directory / "mlflow.db")
    assert stores["copied"] == stores["new"]
