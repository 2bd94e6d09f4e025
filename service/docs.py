"""The interactive documentation (``/docs``, ``/redoc``) with every script, style sheet and icon
served by the service itself, so the pages work on a network with no way out.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN and the favicon from FastAPI's
site; on an air-gapped network they render blank. The files come from the ``fastapi-offline``
package (Swagger UI 5, which renders the OpenAPI 3.1 FastAPI generates; ReDoc 2; 2.8 MB on disk),
used only as a bundle of files: the pages are FastAPI's own HTML pointed at ``/docs-assets``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"


def assets_directory() -> Path:
    """The installed Swagger UI and ReDoc files; ``FileNotFoundError`` if the package lacks one."""
    directory = Path(str(files("fastapi_offline") / "static"))
    for name in (SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"documentation asset {name} missing from {directory}")
    return directory


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the assets under ``/docs-assets`` and the two pages that use them.

    Build the app with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not added.
    Paths honour the ASGI ``root_path`` (a service mounted under a prefix behind a proxy).
    """
    app.mount(ASSETS_URL, StaticFiles(directory=assets_directory()), name="docs-assets")

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{request.scope.get('root_path', '')}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset(request, SWAGGER_JS),
            swagger_css_url=asset(request, SWAGGER_CSS),
            swagger_favicon_url=asset(request, FAVICON),
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=f"{request.scope.get('root_path', '')}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, REDOC_JS),
            redoc_favicon_url=asset(request, FAVICON),
            with_google_fonts=False,
        )
