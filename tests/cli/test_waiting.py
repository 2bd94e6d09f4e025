"""Waiting for a server process to answer."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cli.waiting import wait_until_ready


class Answers(BaseHTTPRequestHandler):
    """200 on /ready, 503 anywhere else."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_returns_once_the_url_answers_200(server: str) -> None:
    assert wait_until_ready(f"{server}/ready", timeout=10) is None


def test_a_url_that_never_answers_200_times_out(server: str) -> None:
    with pytest.raises(TimeoutError, match="not ready"):
        wait_until_ready(f"{server}/starting", timeout=0.5, interval=0.1)


def test_nothing_listening_times_out() -> None:
    with pytest.raises(TimeoutError):
        wait_until_ready(f"http://127.0.0.1:{closed_port()}/", timeout=0.5, interval=0.1)


def test_a_server_that_exited_fails_at_once_with_its_exit_code() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(timeout=30)
    with pytest.raises(RuntimeError, match="exited with 3"):
        wait_until_ready(f"http://127.0.0.1:{closed_port()}/", process, timeout=60)
