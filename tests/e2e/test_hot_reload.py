"""A new champion is adopted by a running server while requests flow, without a failed answer."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import README_APPLICANT, TrainedStore, champion_source, register_source
from tests.e2e.conftest import BIN, free_port, running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = 4


def test_hot_reload_under_load_fails_nothing_and_audits_everything(
    trained_store: TrainedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    source = champion_source(trained_store.uri)
    register_source(source)
    port = free_port()
    audit_db = tmp_path / "audit.db"
    env = {
        "MLFLOW_TRACKING_URI": uri,
        "LOANRISK_PORT": str(port),
        "LOANRISK_RELOAD_INTERVAL_S": "0.3",
        "LOANRISK_AUDIT_DB_URL": f"sqlite:///{audit_db}",
        "LOANRISK_REQUEST_LOG": "false",
    }
    base = f"http://127.0.0.1:{port}"
    answers: list[list[tuple[int, str | None, str | None]]] = [[] for _ in range(CLIENTS)]
    stop = threading.Event()

    def hammer(slot: int) -> None:
        with httpx.Client(base_url=base, timeout=30.0) as client:
            while not stop.is_set():
                response = client.post("/v1/score", json=README_APPLICANT)
                body = response.json() if response.status_code == 200 else {}
                answers[slot].append(
                    (
                        response.status_code,
                        body.get("model", {}).get("version"),
                        body.get("request_id"),
                    )
                )

    with running([str(BIN / "loanrisk"), "serve"], f"{base}/ready", env, tmp_path / "serve.log"):
        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)
            register_source(source)  # version 2 becomes champion while requests flow
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(v == "2" for slot in answers for _, v, _ in slot[-5:]):
                    break
                time.sleep(0.1)
            time.sleep(1.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

    flat = [a for slot in answers for a in slot]
    assert len(flat) > 50
    assert {status for status, _, _ in flat} == {200}
    assert {version for _, version, _ in flat} == {"1", "2"}
    for slot in answers:
        versions = [int(v) for _, v, _ in slot if v is not None]
        assert versions == sorted(versions), "an answer went back to the old version"
    with sqlite3.connect(audit_db) as connection:
        audited = dict(connection.execute("SELECT request_id, model_version FROM decisions"))
    assert len(audited) == len(flat)
    assert all(audited[request_id] == version for _, version, request_id in flat)
