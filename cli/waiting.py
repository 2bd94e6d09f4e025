"""Waiting for a server started as a child process to answer, the one polling loop the project
needs (``loanrisk up``, the end-to-end tests and the serving benchmark all use it).

Built on tenacity: it retries the check at a fixed interval until it succeeds or time runs out.
"""

from __future__ import annotations

import subprocess

import httpx
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed


class NotReady(Exception):
    """The server did not answer yet (internal: the condition tenacity retries on)."""


def wait_until_ready(
    url: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 120.0,
    interval: float = 0.3,
) -> None:
    """Poll ``url`` with GET every ``interval`` seconds until it answers 200.

    Raises ``RuntimeError`` as soon as ``process`` (the server, if given) has exited, and
    ``TimeoutError`` when ``url`` has not answered 200 within ``timeout`` seconds.
    """

    def check() -> None:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} was ready")
        try:
            status = httpx.get(url, timeout=min(2.0, timeout)).status_code
        except httpx.HTTPError as exc:
            raise NotReady(str(exc)) from None
        if status != 200:
            raise NotReady(f"status {status}")

    try:
        for attempt in Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(interval),
            retry=retry_if_exception_type(NotReady),
        ):
            with attempt:
                check()
    except RetryError:
        raise TimeoutError(f"{url} not ready after {timeout:.0f}s") from None
