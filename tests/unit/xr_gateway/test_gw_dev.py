"""Dev mode: loopback only, decided by ``create_app`` itself; dev tokens only for this machine's pages.

A web page anywhere can make a browser send ``POST /api/dev/token`` to 127.0.0.1, and with DNS
rebinding (evil.example resolving to 127.0.0.1) read the answer: the Host and Origin checks are
what stop a page from minting itself an operator token.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from twin.errors import ConfigError
from twin.settings import Settings
from xr_gateway.app import create_app
from xr_gateway.auth import Role, TokenVerifier
from xr_gateway.settings import GatewaySettings

PORT = 8765
SECRET = "s" * 40


def dev_app(**over: object) -> tuple[TestClient, TokenVerifier]:
    gw = GatewaySettings(
        **{"dev_mode": True, "host": "127.0.0.1", "port": PORT, "jwt_secret": SECRET, **over}
    )
    verifier = TokenVerifier.from_settings(gw)
    app = create_app(Settings(), gw, verifier, kafka=False)
    return TestClient(app, base_url=f"http://127.0.0.1:{PORT}", client=("127.0.0.1", 50000)), verifier


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "gateway.plant"])
def test_create_app_refuses_dev_mode_off_loopback(host: str) -> None:
    gw = GatewaySettings(dev_mode=True, host=host, jwt_secret=SECRET)
    with pytest.raises(ConfigError, match="loopback"):
        create_app(Settings(), gw, TokenVerifier.from_settings(gw), kafka=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_create_app_allows_dev_mode_on_loopback(host: str) -> None:
    gw = GatewaySettings(dev_mode=True, host=host, jwt_secret=SECRET)
    create_app(Settings(), gw, TokenVerifier.from_settings(gw), kafka=False)


def test_a_local_tool_gets_a_token() -> None:
    http, verifier = dev_app()
    with http:
        answer = http.post("/api/dev/token", params={"role": "operator"})
    assert answer.status_code == 200
    assert verifier.verify(answer.json()["token"]).role is Role.OPERATOR


@pytest.mark.parametrize(
    "origin",
    [f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}", f"http://[::1]:{PORT}", "http://localhost:5173"],
)
def test_the_gateways_own_page_and_allowed_origins_get_a_token(origin: str) -> None:
    http, _ = dev_app(allowed_origins=["http://localhost:5173"])
    with http:
        assert http.post("/api/dev/token", headers={"Origin": origin}).status_code == 200


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        f"http://evil.example:{PORT}",  # a rebound name: same port, another site
        "http://127.0.0.1:3000",  # another local page, not allowed
        "null",  # a sandboxed frame or a file:// page
    ],
)
def test_a_page_of_another_origin_gets_no_token(origin: str) -> None:
    http, _ = dev_app()
    with http:
        answer = http.post("/api/dev/token", headers={"Origin": origin})
    assert answer.status_code == 403
    assert "origin" in answer.json()["detail"]


@pytest.mark.parametrize(
    "host",
    [
        f"evil.example:{PORT}",  # DNS rebinding: the browser thinks it talks to evil.example
        "evil.example",
        f"127.0.0.1.evil.example:{PORT}",
        "127.0.0.1:9999",  # not the port the gateway listens on
        f"10.0.0.5:{PORT}",
    ],
)
def test_a_request_for_another_host_gets_no_token(host: str) -> None:
    http, _ = dev_app()
    with http:
        answer = http.post("/api/dev/token", headers={"Host": host})
    assert answer.status_code == 403
    assert "Host" in answer.json()["detail"]


def test_a_remote_client_gets_no_token() -> None:
    gw = GatewaySettings(dev_mode=True, port=PORT, jwt_secret=SECRET)
    app = create_app(Settings(), gw, TokenVerifier.from_settings(gw), kafka=False)
    with TestClient(app, base_url=f"http://127.0.0.1:{PORT}", client=("10.0.0.9", 50000)) as http:
        assert http.post("/api/dev/token").status_code == 403


def test_without_dev_mode_there_is_no_token_endpoint() -> None:
    http, _ = dev_app(dev_mode=False)
    with http:
        assert http.post("/api/dev/token").status_code == 404


def test_the_api_docs_need_no_cdn() -> None:
    """Plant networks reach no CDN: /docs and everything it loads come from the gateway itself."""
    import re

    client, _ = dev_app()
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert assets and all(a.startswith("/docs-assets/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "cdn" not in page.text.lower() and "https://" not in page.text


def test_a_refused_handshake_is_no_error_in_the_log() -> None:
    """uvicorn logs "ASGI callable returned without completing handshake." at ERROR after every
    denial response; after the gateway's own refusal that is DEBUG, anywhere else it stays ERROR."""
    import contextvars
    import logging

    from xr_gateway.server import RefusalIsNotAnError
    from xr_gateway.session import REFUSED

    def record() -> logging.LogRecord:
        msg = "ASGI callable returned without completing handshake."
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, msg, None, None)

    quiet = RefusalIsNotAnError()
    assert quiet.filter(record())  # no refusal in this context: a real error, kept

    def refused() -> bool:
        REFUSED.set(True)
        return quiet.filter(record())

    assert not contextvars.copy_context().run(refused)
