"""The deployment files: docker-compose.yml, Dockerfile, .env.example and the CI entry point.

No Docker engine runs where the suite runs, so these read the files; CI also validates the compose
file with ``docker-compose config``.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml

from cli import app as cli_app
from service.config import Settings
from tests.conftest import PROJECT_DIR

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
SERVICES = {"postgres", "mlflow", "trainer", "service"}
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}; $$ escapes a literal dollar.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(\w+)(?:(:?-)([^}]*)|:?\?[^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def with_defaults(value: str) -> str:
    """A compose string as it reads with no environment and no .env file."""
    return INTERPOLATION.sub(lambda m: m.group(3) or "", value)


def interpolated(value: str) -> set[str]:
    return {m.group(1) for m in INTERPOLATION.finditer(value)}


def cli_commands() -> set[str]:
    return {command.name or command.callback.__name__ for command in cli_app.registered_commands}


def test_the_four_services_are_defined(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_every_command_is_a_project_entry_point_or_an_image_default(
    compose: dict[str, Any],
) -> None:
    scripts = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["scripts"]
    assert "loanrisk" in scripts
    for name, service in compose["services"].items():
        assert "entrypoint" not in service, f"{name} overrides the image's entry point"
        command = service.get("command")
        if command is None:
            assert service["image"].startswith("postgres:"), f"{name} has no command"
            continue
        assert isinstance(command, list), f"{name}: use the exec form, not a shell string"
        if command[0] == "loanrisk":
            assert command[1] in cli_commands(), f"{name}: loanrisk has no command {command[1]!r}"
        else:
            assert command[:2] == ["mlflow", "server"], f"{name} runs {command[:2]}"


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_mlflow_uses_postgresql_and_proxies_artifacts_to_a_named_volume(
    compose: dict[str, Any],
) -> None:
    mlflow = compose["services"]["mlflow"]
    command = mlflow["command"]
    assert option(command, "--backend-store-uri").startswith("postgresql+psycopg2://")
    assert with_defaults(option(command, "--backend-store-uri")).endswith("@postgres:5432/mlflow")
    assert "--serve-artifacts" in command
    destination = option(command, "--artifacts-destination")
    volumes = {v.split(":")[1]: v.split(":")[0] for v in mlflow["volumes"]}
    assert volumes[destination] in compose["volumes"]
    assert option(command, "--port") == "5000"
    assert option(command, "--host") == "0.0.0.0"
    assert any(with_defaults(p).endswith(":5000") for p in mlflow["ports"])
    assert "/health" in " ".join(mlflow["healthcheck"]["test"])
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The other containers call it by its service name, which MLflow refuses unless allowed.
    allowed = with_defaults(mlflow["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"]).split(",")
    assert "mlflow:*" in allowed


def test_postgres_keeps_its_data_and_creates_the_audit_database(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in postgres["volumes"]}
    assert mounts["/var/lib/postgresql/data"] in compose["volumes"]
    init_dir = PROJECT_DIR / mounts["/docker-entrypoint-initdb.d"]
    init_sql = " ".join(p.read_text() for p in init_dir.glob("*.sql"))
    audit_url = with_defaults(
        compose["services"]["service"]["environment"]["LOANRISK_AUDIT_DB_URL"]
    )
    assert audit_url.startswith("postgresql+psycopg2://")
    audit_database = audit_url.rsplit("/", 1)[1]
    assert f"CREATE DATABASE {audit_database};" in init_sql
    assert postgres["environment"]["POSTGRES_DB"] == "mlflow"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_trainer_is_a_one_shot_job_that_reads_mounted_data(compose: dict[str, Any]) -> None:
    trainer = compose["services"]["trainer"]
    assert trainer["profiles"] == ["train"]
    assert trainer["command"] == ["loanrisk", "train"]
    assert "restart" not in trainer
    assert trainer["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert trainer["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert any(v.endswith(":/input:ro") for v in trainer["volumes"])


def test_service_is_stateless_configured_from_the_environment_and_health_checked(
    compose: dict[str, Any],
) -> None:
    service = compose["services"]["service"]
    environment = service["environment"]
    assert service["command"] == ["loanrisk", "serve"]
    assert environment["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert interpolated(environment["LOANRISK_API_KEYS"]) == {"LOANRISK_API_KEYS"}
    assert interpolated(environment["LOANRISK_AUDIT_DB_URL"]) == {"LOANRISK_AUDIT_DB_URL"}
    assert environment["LOANRISK_PORT"] == "8000"
    assert environment["LOANRISK_HOST"] == "0.0.0.0"
    # Replicas: no fixed container name, no local state.
    assert "container_name" not in service
    assert "volumes" not in service
    healthcheck = " ".join(service["healthcheck"]["test"])
    assert "127.0.0.1:8000/ready" in healthcheck
    assert service["depends_on"]["mlflow"]["condition"] == "service_healthy"


def test_compose_defaults_agree_with_the_service_settings(compose: dict[str, Any]) -> None:
    defaults = Settings.model_fields
    deliberate = {"audit_db_url"}  # the stack's audit trail is on PostgreSQL, not SQLite
    checked = 0
    for key, value in compose["services"]["service"]["environment"].items():
        field = key.removeprefix("LOANRISK_").lower()
        if field in deliberate or field not in defaults or "${" not in str(value):
            continue
        expected = defaults[field].default
        assert type(expected)(with_defaults(value)) == expected, key
        checked += 1
    assert checked >= 5


def test_every_variable_has_a_default_and_is_documented_in_env_example(
    compose: dict[str, Any],
) -> None:
    text = COMPOSE_FILE.read_text()
    used = {m.group(1) for m in INTERPOLATION.finditer(text)}
    without_default = {m.group(1) for m in INTERPOLATION.finditer(text) if m.group(2) is None}
    assert not without_default, "docker-compose config must pass with no .env file"
    documented = {
        line.split("=", 1)[0]
        for line in (PROJECT_DIR / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used == documented


def test_dockerfile_builds_a_slim_non_root_image_with_a_cached_dependency_layer() -> None:
    lines = [
        line.strip()
        for line in (PROJECT_DIR / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    text = "\n".join(lines)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert len(stages) == 2, "a build stage, and a runtime stage without pip's leftovers"
    build = lines[stages[0] : stages[1]]
    runtime = lines[stages[1] :]

    def first(prefix: str, within: list[str]) -> int:
        return next(i for i, line in enumerate(within) if line.startswith(prefix))

    # Dependencies are installed from pyproject.toml alone, before any source is copied.
    assert first("COPY pyproject.toml", build) < first("RUN python -c", build)
    assert first("RUN python -c", build) < first("COPY models", build)
    for copied in ("models", "training", "service", "data"):
        assert any(line.startswith(f"COPY {copied} ") for line in build), copied
    assert "pip install --no-deps --no-build-isolation -e ." in text
    assert not re.search(r"apt-get|build-essential|gcc", text)
    user = [line for line in runtime if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert runtime[-1] == 'CMD ["loanrisk", "serve"]'


def test_dockerignore_sends_only_what_the_image_needs() -> None:
    lines = (PROJECT_DIR / ".dockerignore").read_text().splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!models", "!training", "!service", "!data"} <= set(
        rules
    )


def test_ci_validates_the_compose_file_and_runs_the_postgres_test_before_make_test() -> None:
    script = (PROJECT_DIR / ".ci" / "run").read_text()
    lines = [line.strip() for line in script.splitlines() if line.strip()]
    assert lines[0] == "#!/bin/sh"
    assert "set -eu" in lines
    commands = [line for line in lines if not line.startswith("#")]
    assert commands[-1] == "make test"
    assert "docker-compose -f docker-compose.yml config -q" in script
    assert re.search(r"^export LOANRISK_TEST_POSTGRES_URL=", script, re.M)
