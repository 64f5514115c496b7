"""The ASGI app: ``create_app(settings, gw, verifier)`` for uvicorn (``twin gateway``) or tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from twin.errors import ConfigError
from twin.settings import Settings
from xr_gateway import rest
from xr_gateway.auth import TokenVerifier, is_loopback
from xr_gateway.direct import RawSendMiddleware
from xr_gateway.history import HistoryStore
from xr_gateway.service import Gateway
from xr_gateway.session import websocket_endpoint
from xr_gateway.settings import GatewaySettings

WEB_DIST = Path(__file__).resolve().parent / "web" / "dist"
NOT_BUILT = """<!doctype html><title>Factory Twin</title>
<p>The WebXR client is not built. Run <code>make web</code> (npm + Vite), then reload.</p>"""


def check_dev_mode(gw: GatewaySettings) -> None:
    """Dev mode hands out tokens to whoever asks from this machine: a ConfigError unless the gateway
    is bound to a loopback host."""
    if gw.dev_mode and not is_loopback(gw.host):
        msg = f"dev mode hands out tokens: bind the gateway to a loopback host (127.0.0.1), not {gw.host!r}"
        raise ConfigError(msg)


def create_app(
    settings: Settings,
    gw: GatewaySettings,
    verifier: TokenVerifier,
    *,
    history: HistoryStore | None = None,
    kafka: bool = True,
) -> FastAPI:
    """The gateway app. ``kafka=False`` runs without the feed and commands (tests drive the hub).

    Dev mode is refused here, whoever builds the app, unless bound to loopback (:func:`check_dev_mode`).
    """
    check_dev_mode(gw)
    gateway = Gateway(settings, gw, verifier, history=history, kafka=kafka)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="Factory Twin XR gateway",
        summary="Live twin state over websockets (/ws) and REST, for WebXR clients",
        description="Websocket protocol: see docs/gateway.md. REST under /api needs a Bearer token.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served below from packaged assets, not a CDN
        redoc_url=None,
    )
    app.state.gateway = gateway
    if gw.allowed_origins:
        # The same allowlist as the websocket: the WebXR client calls REST from the browser too.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(gateway.allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization"],
        )
    # Outermost of ours, so it sees the server's own send (xr_gateway.direct: the fan-out fast path).
    app.add_middleware(RawSendMiddleware)
    app.include_router(rest.ops)
    app.include_router(rest.api)
    if gw.dev_mode:
        app.include_router(rest.dev)
    app.add_api_websocket_route("/ws", websocket_endpoint)
    _offline_docs(app)

    # An API path no route matched is a 404 (not the static files' 405 for a POST).
    @app.api_route(
        "/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    def no_such_api(path: str) -> None:
        raise HTTPException(status_code=404, detail=f"no such API: /api/{path}")

    web = gw.web_dir or WEB_DIST
    if (web / "index.html").is_file():
        # Last: /ws, /api, /docs and /metrics match first. The page holds no data; the token does.
        app.mount("/", StaticFiles(directory=web, html=True), name="web")
    else:

        @app.get("/", include_in_schema=False)
        def not_built() -> HTMLResponse:
            return HTMLResponse(NOT_BUILT, status_code=503)

    return app


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the assets packaged with swagger-ui-bundle: a plant network reaches
    no CDN, and the page must still work there."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
