"""The chaos suite's pieces: a private PostgreSQL cluster, a real service process, load.

The cluster is the suite's own (``initdb`` as the ``postgres`` user into a temporary directory,
on a free loopback port): it is frozen and stopped, never the machine's shared server. The service
is ``loanrisk serve`` with the session's trained champion (``tests/conftest.py``), the one place the
suite takes a model from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from cli.waiting import wait_until_ready
from tests.conftest import README_APPLICANT, TrainedStore
from tests.e2e.conftest import BIN, free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(command: list[str]) -> list[str]:
    """Run as the ``postgres`` OS user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class Cluster:
    """A private PostgreSQL cluster: start, stop, freeze (SIGSTOP) and thaw (SIGCONT)."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), *args]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        log = str(self.directory / "postgres.log")
        self._pg_ctl("-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster and every backend it started."""
        postmaster = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                        children.append(int(entry.name))
        return [postmaster, *children]

    def signal(self, number: signal.Signals) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP on the postmaster and its backends for the block; SIGCONT whatever happens."""
        self.signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.signal(signal.SIGCONT)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN}")
    directory = Path(tempfile.mkdtemp(prefix="loanrisk-chaos-pg-"))
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    if owner is not None:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(directory / "data"),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    instance = Cluster(directory, free_port())
    instance.start()
    try:
        yield instance
    finally:
        instance.signal(signal.SIGCONT)  # never leave it frozen
        with contextlib.suppress(Exception):
            instance.stop()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Service:
    """A running ``loanrisk serve`` process."""

    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def rss_mb(self) -> float:
        """Resident memory of the service and its audit writer (MB)."""
        total = 0
        pids = [self.process.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                        pids.append(int(entry.name))
        for pid in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@contextlib.contextmanager
def serving(trained: TrainedStore, audit_url: str, log: Path, **settings: str) -> Iterator[Service]:
    """``loanrisk serve`` on a free loopback port with the trained champion."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained.uri,
        "LOANRISK_AUDIT_DB_URL": audit_url,
        "LOANRISK_HOST": "127.0.0.1",
        "LOANRISK_PORT": str(port),
        "LOANRISK_RELOAD_INTERVAL_S": "0",
        **{f"LOANRISK_{name.upper()}": value for name, value in settings.items()},
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "loanrisk"), "serve"],
            cwd=trained.directory,
            env=env,
            stdout=out,
            stderr=out,
        )
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/ready", process)
            yield Service(process, f"http://127.0.0.1:{port}", log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Answer:
    started: float  # time.monotonic()
    seconds: float
    status: int  # 0: no answer (connection error or the client's own timeout)
    request_id: str | None


@dataclass
class Load:
    """Scoring requests from ``workers`` concurrent clients until stopped."""

    base: str
    workers: int = 6
    pause_s: float = 0.02  # between one client's requests: load, not a flood
    answers: list[Answer] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _client(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = await client.post("/v1/score", json=README_APPLICANT)
                status, request_id = response.status_code, response.headers.get("x-request-id")
            except httpx.HTTPError:
                status, request_id = 0, None
            self.answers.append(Answer(started, time.monotonic() - started, status, request_id))
            await asyncio.sleep(self.pause_s)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=60) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.workers)))

    def stop(self) -> None:
        self._stop.set()


@dataclass
class ReadyWatch:
    """``/ready`` polled every ``interval_s``: (time.monotonic(), status) of each answer."""

    base: str
    interval_s: float = 0.1
    seen: list[tuple[float, int]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    status = (await client.get("/ready")).status_code
                except httpx.HTTPError:
                    status = 0
                self.seen.append((time.monotonic(), status))
                await asyncio.sleep(self.interval_s)

    def stop(self) -> None:
        self._stop.set()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(title: str, figures: dict[str, object]) -> None:
    """Print an attack's figures (shown with ``-s``, and kept in the captured output)."""
    lines = [f"\n== {title}"]
    for name, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"   {name:<36} {shown}")
    sys.stdout.write("\n".join(lines) + "\n")
