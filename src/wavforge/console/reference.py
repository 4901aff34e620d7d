"""The API reference at ``/docs`` (Swagger UI from vendored files) and ``/`` to the console.

FastAPI's own ``/docs`` loads Swagger UI from a CDN and its favicon from fastapi's site, so
without internet it is a blank page; the console is sold as working offline, and so is this.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)

VENDOR = "/console/static/vendor"
SWAGGER_UI = "5.35.0"


@router.get("/")
def home() -> RedirectResponse:
    """A person who opens the server's address lands in the console."""
    return RedirectResponse("/console", status_code=307)


@router.get("/docs")
def reference() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="wavforge API",
        swagger_js_url=f"{VENDOR}/swagger-ui-bundle-{SWAGGER_UI}.js",
        swagger_css_url=f"{VENDOR}/swagger-ui-{SWAGGER_UI}.css",
        swagger_favicon_url="/console/static/favicon.svg",
        # No badge from validator.swagger.io: nothing leaves the machine.
        swagger_ui_parameters={"validatorUrl": None},
    )
