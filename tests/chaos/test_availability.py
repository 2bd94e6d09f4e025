"""Availability attacks on a real service process and a private PostgreSQL cluster.

Each attack is bounded in time, runs on loopback only, and prints its figures (run with ``-s``
to see them; docs/reliability.md records a run). Each check is a function returning what went
wrong, so the suite also shows that the checks can fail: the frozen-database attack run against
a service without a useful deadline must be caught.

The time bounds asserted are not performance figures: they separate "answered at the deadline"
from "held for the whole fault" (a freeze several times longer than the deadline plus a margin
for a busy machine).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.chaos.conftest import (
    Cluster,
    Load,
    ReadyWatch,
    Service,
    percentile,
    report,
    serving,
)
from tests.conftest import README_APPLICANT, TrainedStore

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

DEADLINE_MS = 1000
# Past the deadline, what a busy 2-core machine may add before the 503 is written out.
MARGIN_S = 1.5
FREEZE_S = 4.0  # > deadline + margin, so a request held for the freeze cannot pass the check
RECOVERY_LIMIT_S = 30.0  # a bound against hanging, not a figure


def fresh_database(cluster: Cluster) -> str:
    """A new database on the private cluster for one service: its URL."""
    name = f"audit_{uuid.uuid4().hex[:10]}"
    admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return cluster.url.rsplit("/", 1)[0] + f"/{name}"


def audited_ids(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        ids = {row[0] for row in connection.execute(text("SELECT request_id FROM decisions"))}
    engine.dispose()
    return ids


@pytest.fixture(scope="module")
def service(
    trained_store: TrainedStore, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, str]]:
    """The service under attack: audit deadline 1 s, store probed every 0.2 s."""
    url = fresh_database(cluster)
    log = tmp_path_factory.mktemp("chaos") / "service.log"
    with serving(
        trained_store,
        url,
        log,
        audit_timeout_ms=str(DEADLINE_MS),
        audit_probe_interval_s="0.2",
    ) as running:
        yield running, url


def freeze_attack(service: Service, cluster: Cluster, audit_url: str) -> dict[str, object]:
    """Scoring load; PostgreSQL frozen for FREEZE_S; load until /ready is back and scoring
    answers 200 again. The figures, and the raw answers under ``_``-prefixed keys."""

    async def attack() -> tuple[Load, ReadyWatch, float, float, float | None, float | None]:
        load, watch = Load(service.base), ReadyWatch(service.base)
        tasks = [asyncio.create_task(load.run()), asyncio.create_task(watch.run())]
        await asyncio.sleep(1.5)
        frozen_at = time.monotonic()
        with cluster.frozen():
            await asyncio.sleep(FREEZE_S)
        thawed_at = time.monotonic()
        ready_again = scoring_again = None
        while time.monotonic() - thawed_at < RECOVERY_LIMIT_S:
            await asyncio.sleep(0.1)
            if ready_again is None:
                ready_again = next((t for t, s in watch.seen if t > thawed_at and s == 200), None)
            if scoring_again is None:
                scoring_again = next(
                    (a.started for a in load.answers if a.started > thawed_at and a.status == 200),
                    None,
                )
            if ready_again is not None and scoring_again is not None:
                break
        await asyncio.sleep(0.5)  # some traffic after recovery
        load.stop()
        watch.stop()
        await asyncio.gather(*tasks)
        return load, watch, frozen_at, thawed_at, ready_again, scoring_again

    memory_before = service.rss_mb()
    load, watch, frozen_at, thawed_at, ready_again, scoring_again = asyncio.run(attack())
    memory_after = service.rss_mb()
    during = [a for a in load.answers if frozen_at <= a.started < thawed_at]
    audited = audited_ids(audit_url)
    answered = {a.request_id for a in load.answers if a.status == 200}
    refused = {a.request_id for a in load.answers if a.status == 503}
    return {
        "requests": len(load.answers),
        "200s": sum(a.status == 200 for a in load.answers),
        "503s": sum(a.status == 503 for a in load.answers),
        "other answers": sum(a.status not in (200, 503) for a in load.answers),
        "requests started during the freeze": len(during),
        "of them 200 / 503": (
            f"{sum(a.status == 200 for a in during)} / {sum(a.status == 503 for a in during)}"
        ),
        "latency during the freeze p50 (s)": percentile([a.seconds for a in during], 0.5),
        "latency during the freeze max (s)": max((a.seconds for a in during), default=0.0),
        "/ready 503 seen during the freeze": any(
            frozen_at <= t <= thawed_at + 0.5 and s == 503 for t, s in watch.seen
        ),
        "time to /ready 200 after thaw (s)": (
            None if ready_again is None else ready_again - thawed_at
        ),
        "time to a scoring 200 after thaw (s)": (
            None if scoring_again is None else scoring_again - thawed_at
        ),
        "audited records": len(audited),
        "answered 200 but not audited": len(answered - audited),
        "answered 503 but audited": len(refused & audited),
        "memory before / after (MB)": f"{memory_before:.0f} / {memory_after:.0f}",
        "_during": during,
    }


def freeze_violations(figures: dict[str, object]) -> list[str]:
    """What the frozen-database attack found wrong (empty: it held)."""
    wrong = []
    during: list = figures["_during"]  # type: ignore[assignment]
    if not during:
        wrong.append("no request was made during the freeze")
    slow = [a for a in during if a.seconds > DEADLINE_MS / 1000 + MARGIN_S]
    if slow:
        wrong.append(f"{len(slow)} requests during the freeze outlived deadline + margin")
    if any(a.status not in (200, 503) for a in during):
        wrong.append("answers other than 200 or 503 during the freeze")
    if figures["other answers"]:
        wrong.append("answers other than 200 or 503")
    if not figures["/ready 503 seen during the freeze"]:
        wrong.append("/ready never answered 503 during the freeze")
    if figures["time to /ready 200 after thaw (s)"] is None:
        wrong.append("/ready did not come back")
    if figures["time to a scoring 200 after thaw (s)"] is None:
        wrong.append("scoring did not come back")
    if figures["answered 200 but not audited"]:
        wrong.append("answered decisions missing from the audit table")
    if figures["answered 503 but audited"]:
        wrong.append("refused requests with a committed record")
    return wrong


def test_a_frozen_database_answers_503_within_the_deadline_and_recovers(
    service: tuple[Service, str], cluster: Cluster
) -> None:
    running, url = service
    figures = freeze_attack(running, cluster, url)
    report(
        f"PostgreSQL frozen {FREEZE_S:.0f} s under load (deadline {DEADLINE_MS} ms)",
        {k: v for k, v in figures.items() if not k.startswith("_")},
    )
    assert freeze_violations(figures) == []


def test_the_frozen_database_attack_catches_a_service_without_a_deadline(
    trained_store: TrainedStore, cluster: Cluster, tmp_path: Path
) -> None:
    """The same attack on a service whose deadline outlasts the freeze must be caught."""
    url = fresh_database(cluster)
    with serving(
        trained_store,
        url,
        tmp_path / "service.log",
        audit_timeout_ms="60000",
        audit_probe_interval_s="0.2",
    ) as running:
        figures = freeze_attack(running, cluster, url)
    report(
        "the same attack, deadline 60 s (must be caught)",
        {k: v for k, v in figures.items() if not k.startswith("_")},
    )
    wrong = freeze_violations(figures)
    assert any("outlived deadline" in w for w in wrong), wrong
    assert "/ready never answered 503 during the freeze" in wrong


def test_decision_reads_answer_503_while_the_database_is_down(
    service: tuple[Service, str], cluster: Cluster
) -> None:
    running, _ = service
    base = running.base
    answered = httpx.post(f"{base}/v1/score", json=README_APPLICANT, timeout=30)
    assert answered.status_code == 200
    request_id = answered.json()["request_id"]
    memory_before = running.rss_mb()
    cluster.stop()
    stopped_at = time.monotonic()
    try:
        reads = [httpx.get(f"{base}/v1/decisions/{request_id}", timeout=30) for _ in range(5)]
        scores = [httpx.post(f"{base}/v1/score", json=README_APPLICANT, timeout=30)]
        ready_down = None
        while time.monotonic() - stopped_at < RECOVERY_LIMIT_S:
            if httpx.get(f"{base}/ready", timeout=30).status_code == 503:
                ready_down = time.monotonic() - stopped_at
                break
            time.sleep(0.1)
    finally:
        cluster.start()
    started_at = time.monotonic()
    ready_up = None
    while time.monotonic() - started_at < RECOVERY_LIMIT_S:
        if httpx.get(f"{base}/ready", timeout=30).status_code == 200:
            ready_up = time.monotonic() - started_at
            break
        time.sleep(0.1)
    after = httpx.get(f"{base}/v1/decisions/{request_id}", timeout=30)
    report(
        "PostgreSQL stopped: reading decisions",
        {
            "decision reads while down": len(reads),
            "their statuses": sorted({r.status_code for r in reads}),
            "their codes": sorted(
                {r.json()["error"]["code"] for r in reads if r.status_code >= 400}
            ),
            "read latency max while down (s)": max(r.elapsed.total_seconds() for r in reads),
            "scoring statuses while down": [r.status_code for r in scores],
            "time to /ready 503 after stop (s)": ready_down,
            "time to /ready 200 after start (s)": ready_up,
            "decision read after restart": after.status_code,
            "memory before / after (MB)": f"{memory_before:.0f} / {running.rss_mb():.0f}",
        },
    )
    assert {r.status_code for r in reads} == {503}
    assert {r.json()["error"]["code"] for r in reads} == {"audit_unavailable"}
    assert [r.status_code for r in scores] == [503]
    assert ready_down is not None and ready_up is not None
    assert after.status_code == 200


def hang_up_mid_body(base: str) -> None:
    """Send a scoring request's head and part of its body, then close the connection."""
    host, port = base.removeprefix("http://").split(":")
    body = json.dumps(README_APPLICANT).encode()
    head = (
        f"POST /v1/score HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head + body[: len(body) // 2])
        time.sleep(0.05)  # let the service start reading the body


def request_counts(base: str) -> dict[str, float]:
    """``loanrisk_http_requests_total`` of POST /v1/score by status."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{base}/metrics", timeout=30).text.splitlines():
        if line.startswith("loanrisk_http_requests_total{") and 'route="/v1/score"' in line:
            status = line.split('status="', 1)[1].split('"', 1)[0]
            counts[status] = counts.get(status, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_a_client_hanging_up_mid_body_is_counted_as_499_without_an_error(
    service: tuple[Service, str],
) -> None:
    running, _ = service
    before = request_counts(running.base)
    log_lines = len(running.log_lines())
    memory_before = running.rss_mb()
    hang_ups = 20
    for _ in range(hang_ups):
        hang_up_mid_body(running.base)
    # The service logs each request once it has settled it.
    end = time.monotonic() + RECOVERY_LIMIT_S
    while request_counts(running.base).get("499", 0) - before.get("499", 0) < hang_ups:
        if time.monotonic() > end:
            break
        time.sleep(0.1)
    after = request_counts(running.base)
    new_lines = running.log_lines()[log_lines:]
    errors = [line for line in new_lines if '"level": "ERROR"' in line or "Traceback" in line]
    report(
        "clients hanging up mid-body",
        {
            "hang-ups": hang_ups,
            "counted 499": after.get("499", 0) - before.get("499", 0),
            "counted 500": after.get("500", 0) - before.get("500", 0),
            "ERROR log lines": len(errors),
            "memory before / after (MB)": f"{memory_before:.0f} / {running.rss_mb():.0f}",
        },
    )
    assert after.get("499", 0) - before.get("499", 0) == hang_ups
    assert after.get("500", 0) == before.get("500", 0)
    assert errors == []
