"""No request can create a new metrics series: labels come from route templates only."""

from __future__ import annotations

import random
import re
import string

from tests.conftest import ClientFactory

SERIES = re.compile(r"^loanrisk_http_requests_total\{(.*)\} ", re.MULTILINE)


def _kinds(segment: str) -> list[tuple[str, str]]:
    """Requests for paths no route matches, one of each kind of answer."""
    return [
        ("GET", f"/{segment}"),  # 404
        ("GET", f"/v1/decisions/{segment}/"),  # 307 to the path without its slash
        ("POST", f"/v1/{segment}/{segment}"),  # 404
        ("DELETE", f"/{segment}"),  # 404
        ("PUT", "/health/"),  # 307
        ("DELETE", "/health"),  # 405, labelled with the route's template
    ]


def test_two_thousand_unmatched_paths_add_no_series(
    mlflow_store: str, make_client: ClientFactory
) -> None:
    rng = random.Random(15)
    alphabet = string.ascii_letters + string.digits + "-_.~%"
    with make_client(request_log=False) as client:
        # One request of each kind first (and the scrape itself), so their series exist.
        for method, path in _kinds("first"):
            client.request(method, path, follow_redirects=False)
        client.get("/metrics")
        before = set(SERIES.findall(client.get("/metrics").text))
        statuses: set[int] = set()
        for i in range(2_000):
            segment = "".join(rng.choices(alphabet, k=rng.randint(1, 40)))
            method, path = _kinds(segment)[i % 6]
            statuses.add(client.request(method, path, follow_redirects=False).status_code)
        after = set(SERIES.findall(client.get("/metrics").text))
    assert statuses == {404, 307, 405}
    assert after == before, sorted(after - before)[:5]
    assert 'method="GET",route="unmatched",status="307"' in after
    assert 'method="DELETE",route="/health",status="405"' in after
    assert not any("first" in labels for labels in after)
