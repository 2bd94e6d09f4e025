"""Connection limits enforced before a request reaches the app: the size and count of a request's
headers, a deadline for receiving them, and how many connections one worker serves.

uvicorn (0.54, httptools parser) has none of the first three: a 10 MB header was accepted, 20
unfinished 10 MB headers held 220 MB, and connections that sent half a head and stopped stayed
open for ever (about 300 of them under ``ulimit -n 256`` locked every client out). Its
``h11_max_incomplete_event_size`` applies only to the slower pure-Python h11 parser, and its
``limit_concurrency`` answers a plain-text 503 outside the service's error shape. So
:class:`GuardedHttpToolsProtocol` subclasses uvicorn's httptools protocol and adds them:

* header bytes above ``LOANRISK_MAX_HEADER_BYTES`` (counted as parsed, and as received while the
  head is incomplete, so a header without an end is cut off too, with at most one socket read,
  256 KiB, more held), or more than
  ``LOANRISK_MAX_HEADERS`` header lines: 431 and the connection closed;
* a head not complete ``LOANRISK_HEAD_TIMEOUT_S`` after the connection opened (first request) or
  after its first byte (later requests on a kept-alive connection): 408 and closed, or closed
  silently when not a byte of it came (uvicorn's keep-alive timeout covers idle time between
  requests);
* a request arriving while more than ``LOANRISK_MAX_CONNECTIONS`` connections are open, or that
  many requests are in flight: 503 ``server_busy`` with ``Retry-After`` and ``Connection: close``.

The cost on the hot path is one timer armed and cancelled and a few integer operations per
request, next to the 10 µs httptools and uvicorn already spend per request.

Every answer here uses the service's one error shape (:func:`service.errors.error_body`). The
limits are read once per worker process from the environment (:func:`connection_limits`), since
uvicorn builds one protocol object per connection and gives it only its own ``Config``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.errors import error_body

logger = logging.getLogger("loanrisk.connections")


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-worker limits; see the module docstring for what each one answers."""

    max_header_bytes: int
    max_headers: int
    head_timeout_s: float
    max_connections: int


@functools.cache
def connection_limits() -> ConnectionLimits:
    """The limits from ``LOANRISK_*`` settings, read once per process."""
    from service.config import Settings

    settings = Settings()
    return ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        head_timeout_s=settings.head_timeout_s,
        max_connections=settings.max_connections,
    )


def error_response_bytes(status: int, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer in the service's error shape, closing the connection."""
    body = json.dumps(error_body(code, message)).encode()
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


_BUSY_BODY = json.dumps(
    error_body("server_busy", "too many connections to this server; retry shortly")
).encode()


async def _server_busy(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI app that answers a request past ``LOANRISK_MAX_CONNECTIONS``."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_BUSY_BODY)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BUSY_BODY})


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head past its limits."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits, a head deadline and a connection cap.

    Pass it as uvicorn's ``http`` option (``cli.serve`` does); uvicorn's ``limit_concurrency``
    stays unset, as this class answers past the connection cap itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = connection_limits()
        self._reading_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._header_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    # Connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own data_received, with the head's size checked and its refusals answered.
        self._unset_keepalive_if_required()
        if self._reading_head:
            self._head_bytes += len(data)
            if self._head_timer is None:  # the first byte of a later request's head
                self._arm_head_timer()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused:
                self._refuse_head_too_large()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._reading_head and self._head_bytes > self._limits.max_header_bytes:
            self._refuse_head_too_large()

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._header_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        # Counted exactly here: a whole head can arrive in one read together with its body.
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4
        limits = self._limits
        if self._header_count > limits.max_headers or self._header_bytes > limits.max_header_bytes:
            self._refused = True
            raise _HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        cap = self._limits.max_connections
        if len(self.connections) > cap or len(self.tasks) >= cap:
            logger.warning(
                "refused a request: %d connections open, %d requests in flight, limit %d",
                len(self.connections),
                len(self.tasks),
                cap,
            )
            app, self.app = self.app, _server_busy
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0

    # Refusals

    def _refuse_head_too_large(self) -> None:
        if self.transport.is_closing():
            return
        limits = self._limits
        logger.info(
            "refused a request head: over %d bytes or %d header lines",
            limits.max_header_bytes,
            limits.max_headers,
        )
        self.transport.write(
            error_response_bytes(
                431,
                "headers_too_large",
                f"request headers exceed {limits.max_header_bytes} bytes "
                f"or {limits.max_headers} lines",
            )
        )
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._limits.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._reading_head or self.transport.is_closing():
            return
        if self._head_bytes:
            logger.info("closed a connection: request head incomplete after the deadline")
            self.transport.write(
                error_response_bytes(
                    408,
                    "request_timeout",
                    f"request head not received within {self._limits.head_timeout_s:g} s",
                )
            )
        self.transport.close()
