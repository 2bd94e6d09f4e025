"""Connection limits against a real ``loanrisk serve`` process on loopback: oversized heads, slow
heads and too many connections.

The service runs with no model (an empty registry): /health still answers, and every limit here
applies before the app. Each test is bounded by socket timeouts; none asserts a duration.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cli.waiting import wait_until_ready
from service.limits import GuardedHttpToolsProtocol, connection_limits
from tests.e2e.conftest import free_port

# Generous bounds for a failing test to fail instead of hanging; not expectations of speed.
SOCKET_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Server:
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=SOCKET_TIMEOUT_S)


@contextmanager
def serve(tmp_path: Path, **env: str) -> Iterator[Server]:
    """``loanrisk serve`` (one worker, so the child is the server) on a free loopback port."""
    port = free_port()
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "LOANRISK_AUDIT_DB_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "LOANRISK_RELOAD_INTERVAL_S": "0",
        "LOANRISK_REQUEST_LOG": "false",
        "LOANRISK_WORKERS": "1",
        **env,
    }
    log = tmp_path / f"serve-{port}.log"
    command = [sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=environment, stdout=out, stderr=out)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/health", process)
            yield Server(port, process.pid)
        except Exception:
            sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP answer whole (the server closes after these answers); status, headers, body."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        headers = _headers(head)
        if "content-length" in headers and len(body) >= int(headers["content-length"]):
            break
    head, _, body = data.partition(b"\r\n\r\n")
    assert head, "the server closed without answering"
    return int(head.split(b" ", 2)[1]), _headers(head), body


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def send_huge_header(server: Server, size: int) -> tuple[int, int]:
    """Send a head whose one header is ``size`` bytes, stopping as soon as the server answers.

    Returns the status answered and how many bytes were sent before it.
    """
    chunk = b"a" * 65536
    with server.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Big: ")
        sent = 0
        while sent < size:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        status, _, body = read_answer(sock)
    if status == 431:
        assert json.loads(body)["error"]["code"] == "headers_too_large"
    return status, sent


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a one-second head deadline, 16 KiB heads, 100 headers, 200 connections."""
    with serve(
        tmp_path_factory.mktemp("limits"),
        LOANRISK_HEAD_TIMEOUT_S="1",
        LOANRISK_MAX_HEADER_BYTES="16384",
        LOANRISK_MAX_HEADERS="100",
        LOANRISK_MAX_CONNECTIONS="200",
    ) as server:
        yield server


def test_a_ten_megabyte_header_is_refused_without_growing_the_server(guarded: Server) -> None:
    assert httpx.get(f"{guarded.url}/health").status_code == 200
    before = guarded.rss_kb()
    status, sent = send_huge_header(guarded, 10 * 1024 * 1024)
    assert status == 431
    assert sent < 10 * 1024 * 1024  # refused before the whole header was taken in
    # Twenty at once: once 220 MB of the server's memory.
    results: list[tuple[int, int]] = []
    threads = [
        threading.Thread(target=lambda: results.append(send_huge_header(guarded, 10 << 20)))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SOCKET_TIMEOUT_S)
    assert [status for status, _ in results] == [431] * 20
    assert guarded.rss_kb() - before < 32 * 1024
    assert httpx.get(f"{guarded.url}/health").status_code == 200


def test_too_many_header_lines_are_refused_and_a_normal_head_passes(guarded: Server) -> None:
    many = {f"x-h{i}": "v" for i in range(101)}
    response = httpx.get(f"{guarded.url}/health", headers=many)
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "headers_too_large"
    fine = {f"x-h{i}": "v" * 100 for i in range(90)}
    assert httpx.get(f"{guarded.url}/health", headers=fine).status_code == 200


def test_a_head_and_a_large_body_arriving_together_are_not_counted_as_head(
    guarded: Server,
) -> None:
    # A 300 KB body in the same reads as its head: the head limit must not see the body's bytes.
    body = json.dumps({"applicants": [{"x": "y" * 300_000}]}).encode()
    with guarded.connect() as sock:
        head = (
            b"POST /v1/score/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        sock.sendall(head + body)
        status, _, _ = read_answer(sock)
    assert status not in (400, 431)


def test_slow_heads_are_closed_after_the_deadline_while_others_are_served(
    guarded: Server,
) -> None:
    slow = [guarded.connect() for _ in range(50)]
    try:
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        idle = guarded.connect()  # connects and never sends a byte
        with httpx.Client() as client:
            for _ in range(5):
                assert client.get(f"{guarded.url}/health").status_code == 200
        for sock in slow:
            status, _, body = read_answer(sock)  # returns once the server closes
            assert status == 408
            assert json.loads(body)["error"]["code"] == "request_timeout"
        assert idle.recv(1) == b""  # closed without an answer
        idle.close()
    finally:
        for sock in slow:
            sock.close()
    assert httpx.get(f"{guarded.url}/health").status_code == 200


def test_a_kept_alive_connection_gets_a_deadline_for_each_later_head(guarded: Server) -> None:
    with guarded.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: te")
        data = b""
        while True:  # the rest of the first answer's body, then the 408 and the close
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert b"HTTP/1.1 408" in data


def test_connections_past_the_cap_get_503_server_busy(tmp_path: Path) -> None:
    with serve(tmp_path, LOANRISK_MAX_CONNECTIONS="8", LOANRISK_HEAD_TIMEOUT_S="60") as server:
        held = [server.connect() for _ in range(8)]
        try:
            with server.connect() as extra:
                extra.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
                status, headers, body = read_answer(extra)
            assert status == 503
            assert headers["retry-after"] == "1" and headers["connection"] == "close"
            assert json.loads(body)["error"]["code"] == "server_busy"
        finally:
            for sock in held:
                sock.close()
        # The cap counts open connections: once they close, requests are served again.
        answered = None
        for _ in range(50):
            answered = httpx.get(f"{server.url}/health").status_code
            if answered == 200:
                break
        assert answered == 200


def test_the_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    connection_limits.cache_clear()
    monkeypatch.setenv("LOANRISK_MAX_HEADER_BYTES", "4096")
    monkeypatch.setenv("LOANRISK_MAX_HEADERS", "20")
    monkeypatch.setenv("LOANRISK_HEAD_TIMEOUT_S", "2.5")
    monkeypatch.setenv("LOANRISK_MAX_CONNECTIONS", "64")
    try:
        limits = connection_limits()
    finally:
        connection_limits.cache_clear()
    assert (limits.max_header_bytes, limits.max_headers) == (4096, 20)
    assert (limits.head_timeout_s, limits.max_connections) == (2.5, 64)


def test_serve_runs_uvicorn_with_the_guarded_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from cli.serve import serve as serve_command

    captured: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: captured.update(kwargs))
    monkeypatch.setenv("LOANRISK_KEEP_ALIVE_TIMEOUT_S", "7")
    serve_command(host=None, port=None)
    protocol = captured["http"]
    assert isinstance(protocol, str)
    module, _, name = protocol.partition(":")
    assert getattr(__import__(module, fromlist=[name]), name) is GuardedHttpToolsProtocol
    assert captured["timeout_keep_alive"] == 7
    assert captured.get("limit_concurrency") is None
