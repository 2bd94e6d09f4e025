"""The docker-compose topology on real processes: MLflow on PostgreSQL, training, the service.

A fresh pair of databases on the server named by ``LOANRISK_TEST_POSTGRES_URL`` holds the MLflow
backend store and the audit trail; ``mlflow server`` proxies artifacts from a temporary directory.
The tracking server is then stopped under the running service and brought back.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from sqlalchemy import URL, create_engine, make_url, select, text
from sqlalchemy.exc import SQLAlchemyError

from service.audit import decisions
from tests.conftest import README_APPLICANT
from tests.e2e.conftest import BIN, free_port, wait_until_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POSTGRES_URL_VARIABLE = "LOANRISK_TEST_POSTGRES_URL"
API_KEY = "integration-key"
MODEL_NAME = "loan-default"
RELOADS = re.compile(r'^loanrisk_model_reloads_total\{outcome="([a-z_]+)"\} ([0-9.e+]+)$', re.M)


@dataclass(frozen=True)
class Databases:
    mlflow: str
    audit: str


@pytest.fixture(scope="module")
def postgres_url() -> URL:
    """The server under test; skipped without one, a failure when it is named but unreachable."""
    raw = os.environ.get(POSTGRES_URL_VARIABLE)
    if not raw:
        pytest.skip(
            f"{POSTGRES_URL_VARIABLE} is not set: no PostgreSQL server to run the deployment "
            "topology against (CI sets it in .ci/run)"
        )
    url = make_url(raw)
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        pytest.fail(
            f"{POSTGRES_URL_VARIABLE}={url.render_as_string(hide_password=True)} is set but "
            f"PostgreSQL cannot be reached: {type(exc).__name__}: {exc}",
            pytrace=False,
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="module")
def databases(postgres_url: URL) -> Iterator[Databases]:
    """Two fresh databases with unique names, dropped at the end even if the test fails."""
    prefix = f"loanrisk_it_{uuid.uuid4().hex[:12]}"
    names = {"mlflow": f"{prefix}_mlflow", "audit": f"{prefix}_audit"}
    admin = create_engine(
        postgres_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    created: list[str] = []
    try:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        yield Databases(
            **{
                role: postgres_url.set(database=name).render_as_string(hide_password=False)
                for role, name in names.items()
            }
        )
    finally:
        with admin.connect() as connection:
            for name in created:
                # FORCE: a server killed mid-request may leave a session behind.
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Server:
    """A server process in its own process group: ``mlflow server`` runs its workers as children."""

    def __init__(self, command: list[str], ready_url: str, env: dict[str, str], log: Path) -> None:
        self.command = command
        self.ready_url = ready_url
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=out, start_new_session=True
            )
        try:
            wait_until_ready(self.ready_url, self.process)
        except Exception:
            sys.stderr.write(self.log.read_text(errors="replace")[-4000:])
            self.stop()
            raise

    def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        # Wait for the leader without reaping it: while it is an unreaped zombie its pid, which is
        # the group id, cannot be reused, so the SIGKILL below reaches only this server's workers.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not os.waitid(
            os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT
        ):
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without MLflow settings: the processes get only the ones the test chose,
    and the service must pick its own HTTP timeouts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, **overrides}


def reload_counts(client: httpx.Client) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {outcome: float(value) for outcome, value in RELOADS.findall(response.text)}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def score(client: httpx.Client) -> dict[str, object]:
    response = client.post("/v1/score", json=README_APPLICANT)
    assert response.status_code == 200, response.text
    return response.json()


def test_train_serve_and_survive_a_tracking_server_outage(
    databases: Databases, tmp_path: Path
) -> None:
    mlflow_port, service_port = free_port(), free_port()
    tracking = f"http://127.0.0.1:{mlflow_port}"
    base = f"http://127.0.0.1:{service_port}"
    tracking_server = Server(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            databases.mlflow,
            "--serve-artifacts",
            "--artifacts-destination",
            str(tmp_path / "mlartifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(mlflow_port),
            "--workers",
            "1",
        ],
        f"{tracking}/health",
        # As in docker-compose.yml: no GenAI job runner, which would only slow start and stop.
        clean_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
        tmp_path / "mlflow.log",
    )
    service = Server(
        [str(BIN / "loanrisk"), "serve"],
        f"{base}/ready",
        clean_env(
            MLFLOW_TRACKING_URI=tracking,
            LOANRISK_PORT=str(service_port),
            LOANRISK_AUDIT_DB_URL=databases.audit,
            LOANRISK_API_KEYS=API_KEY,
            LOANRISK_RELOAD_INTERVAL_S="1",
            LOANRISK_REGISTRY_TIMEOUT_S="5",
        ),
        tmp_path / "serve.log",
    )
    try:
        tracking_server.start()
        trained = subprocess.run(
            [
                str(BIN / "loanrisk"),
                "train",
                "--epochs",
                "2",
                "--experiment",
                "integration",
                "--force-promote",
            ],
            cwd=tmp_path,
            env=clean_env(MLFLOW_TRACKING_URI=tracking),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert trained.returncode == 0, trained.stderr[-3000:]
        assert f"{MODEL_NAME} version 1 (alias champion)" in trained.stdout

        # The registry on PostgreSQL holds the version and the alias; artifacts went via the proxy.
        registry = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
        champion = registry.get_model_version_by_alias(MODEL_NAME, "champion")
        assert champion.version == "1"
        assert [v.version for v in registry.search_model_versions(f"name='{MODEL_NAME}'")] == ["1"]
        run = registry.get_run(champion.run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        assert any((tmp_path / "mlartifacts").rglob("MLmodel"))

        service.start()
        headers = {"X-API-Key": API_KEY}
        with httpx.Client(base_url=base, headers=headers, timeout=30.0) as client:
            ready = client.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["model"] == {
                "name": MODEL_NAME,
                "version": "1",
                "run_id": champion.run_id,
            }
            assert (
                client.post(
                    "/v1/score", json=README_APPLICANT, headers={"X-API-Key": ""}
                ).status_code
                == 401
            )

            answer = score(client)
            assert answer["model"]["version"] == "1"
            request_id = str(answer["request_id"])

            # The decision is in PostgreSQL, read directly and through the API.
            audit = create_engine(databases.audit)
            try:
                with audit.connect() as connection:
                    row = (
                        connection.execute(
                            select(decisions).where(decisions.c.request_id == request_id)
                        )
                        .mappings()
                        .one()
                    )
            finally:
                audit.dispose()
            assert row["model_version"] == "1"
            assert row["run_id"] == champion.run_id
            assert row["probability_of_default"] == pytest.approx(answer["probability_of_default"])
            assert row["decision"] == answer["decision"]
            assert row["inputs"]["Amount"] == README_APPLICANT["Amount"]
            record = client.get(f"/v1/decisions/{request_id}")
            assert record.status_code == 200, record.text
            assert record.json()["probability_of_default"] == pytest.approx(
                answer["probability_of_default"]
            )
            assert record.json()["model"]["version"] == "1"

            # The tracking server goes away: the service keeps the model it has and counts failures.
            tracking_server.stop()
            failed_before = reload_counts(client).get("failed_registry", 0.0)
            wait_for(
                lambda: reload_counts(client).get("failed_registry", 0.0) >= failed_before + 2,
                timeout=30,
                what="the poller counts failed registry checks",
            )
            assert score(client)["model"]["version"] == "1"
            assert client.get("/ready").status_code == 200
            started = time.monotonic()
            reload = client.post("/v1/admin/reload")
            elapsed = time.monotonic() - started
            assert reload.status_code == 200, reload.text
            assert reload.json()["outcome"] == "failed_registry"
            assert reload.json()["model"]["version"] == "1"
            assert elapsed < 15, f"a registry check against a dead server took {elapsed:.1f}s"

            # Back on the same port and database: the next check succeeds, failures stop rising.
            tracking_server.start()
            reload = client.post("/v1/admin/reload")
            assert reload.status_code == 200, reload.text
            assert reload.json()["outcome"] in ("unchanged", "loaded")
            after = reload_counts(client)
            wait_for(
                lambda: reload_counts(client).get("unchanged", 0.0) >= after["unchanged"] + 2,
                timeout=30,
                what="the poller succeeds again",
            )
            assert reload_counts(client)["failed_registry"] == after["failed_registry"]
            assert client.get("/ready").json()["model"]["version"] == "1"
            score(client)

            audit = create_engine(databases.audit)
            try:
                with audit.connect() as connection:
                    stored = connection.execute(select(decisions.c.model_version)).scalars().all()
            finally:
                audit.dispose()
            assert stored == ["1", "1", "1"]
    finally:
        service.stop()
        tracking_server.stop()
