"""/docs and /redoc work with no way out of the network: every asset comes from the service."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.conftest import ClientFactory

# src="...", href="...", and url(...) in inline styles.
REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(["']?([^"')]+)""")


def _references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_everything_from_the_service(
    mlflow_store: str, make_client: ClientFactory, page: str
) -> None:
    with make_client() as client:
        response = client.get(page)
        assert response.status_code == 200
        html = response.text
        references = _references(html)
        assert references  # the page does load scripts: the check below is not vacuous
        assert not re.search(r"https?://|//[a-z0-9-]+\.[a-z]", html, re.IGNORECASE), html
        for reference in references:
            assert not urlsplit(reference).netloc, reference
            asset = client.get(reference)
            assert asset.status_code == 200, reference
            assert len(asset.content) > 0
        assert client.get("/openapi.json").status_code == 200


def test_swagger_ui_page_names_the_local_bundle_and_style(
    mlflow_store: str, make_client: ClientFactory
) -> None:
    with make_client() as client:
        html = client.get("/docs").text
        script = client.get("/docs-assets/swagger-ui-bundle.js")
    assert "/docs-assets/swagger-ui-bundle.js" in html and "/docs-assets/swagger-ui.css" in html
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    # Swagger UI 5 or later: 4.x cannot render the OpenAPI 3.1 documents FastAPI writes.
    assert b"json-schema-2020-12" in script.content


def test_the_assets_are_not_in_the_api_schema(
    mlflow_store: str, make_client: ClientFactory
) -> None:
    with make_client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
