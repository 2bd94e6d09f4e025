"""The serving benchmark's batch timing, against a real HTTP server."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bench.serve import batch_medians_ms


class _Answers(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the service answers
    status = 200
    bodies: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _Answers.bodies.append(body)
        answer = json.dumps({"results": [{} for _ in body["applicants"]]}).encode()
        self.send_response(_Answers.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Answers.status, _Answers.bodies = 200, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/score/batch"
    httpd.shutdown()
    httpd.server_close()


def test_both_clients_time_the_same_batch(server: str) -> None:
    applicants = [{"Income": 100 + i} for i in range(20)]
    times = batch_medians_ms(server, applicants, repeats=4)
    assert times.repeats == 4
    assert times.median_ms > 0 and times.httpx_median_ms > 0
    # 3 warm-ups and 4 timed requests from each client, all with the whole batch
    assert len(_Answers.bodies) == 14
    assert all(body == {"applicants": applicants} for body in _Answers.bodies)


def test_a_failed_batch_stops_the_timing(server: str) -> None:
    _Answers.status = 503
    with pytest.raises(RuntimeError, match="503"):
        batch_medians_ms(server, [{"Income": 1}], repeats=2)
