"""Serving the console: `/console` (the page), `/console/static/*` (script, styles, the
vendored chart library) and `/docs`, the OpenAPI browser, from Swagger UI files shipped in
the package (static/vendor/), so it works with no network."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
SWAGGER = "/console/static/vendor/swagger-ui"
DOCS, DOCS_OAUTH2_REDIRECT = "/docs", "/docs/oauth2-redirect"

# Only our own script and styles, API calls to this origin, no framing; no referrer, so a
# signed download link never leaves in a Referer header.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/console")
def console_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers=PAGE_HEADERS)


@router.get("/console/")
def console_slash() -> RedirectResponse:
    return RedirectResponse("/console", status_code=308)


def _docs_router(openapi_url: str, title: str) -> APIRouter:
    docs = APIRouter(include_in_schema=False)

    @docs.get(DOCS)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
            oauth2_redirect_url=DOCS_OAUTH2_REDIRECT,
            # no badge from validator.swagger.io: nothing leaves the machine
            swagger_ui_parameters={"validatorUrl": None},
        )

    @docs.get(DOCS_OAUTH2_REDIRECT)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    return docs


def install(app: FastAPI) -> None:
    """The page's routes, its static files, and `/docs` (create the app with
    `docs_url=None`, so that FastAPI's own, which loads Swagger UI from a CDN, is off)."""
    app.include_router(router)
    if app.openapi_url:
        app.include_router(_docs_router(app.openapi_url, app.title))
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
