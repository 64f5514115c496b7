"""The layout the WebXR floor is drawn from, and how the gateway serves the built client."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sim import load_factory
from twin.errors import ConfigError
from twin.settings import Settings
from xr_gateway.app import create_app
from xr_gateway.auth import Role, TokenVerifier
from xr_gateway.layout import layout_view
from xr_gateway.settings import GatewaySettings

SECRET = "s" * 40


def client(tmp_path: Path, **over: object) -> tuple[TestClient, TokenVerifier]:
    gw = GatewaySettings(jwt_secret=SECRET, **over)
    verifier = TokenVerifier.from_settings(gw)
    return TestClient(create_app(Settings(), gw, verifier, kafka=False)), verifier


def test_layout_lists_lines_and_stations_in_flow_order_with_buffers() -> None:
    view = layout_view(load_factory())
    (line,) = view["lines"]
    assert view["name"] == "bracket-plant" and line["id"] == "line-1"
    assert [s["id"] for s in line["stations"]] == ["cnc-1", "press-1", "weld-1", "paint-1", "qc-1"]
    assert [s["input_buffer"] for s in line["stations"]] == [None, 10, 8, 6, 4]
    cnc = line["stations"][0]
    assert cnc["machine_type"] == "cnc" and cnc["ideal_cycle_time_s"] == 42
    assert {"name": "vibration_rms", "unit": "mm/s", "role": "vibration"} in cnc["channels"]


def test_layout_endpoint_needs_a_token_and_follows_the_factory_file(tmp_path: Path) -> None:
    factory = tmp_path / "two.yaml"
    factory.write_text(
        "name: tiny\nlines:\n  - id: a\n    stations:\n"
        "      - {id: m1, machine_type: cnc, ideal_cycle_time_s: 10}\n"
        "      - {id: m2, machine_type: qc, ideal_cycle_time_s: 5}\n"
    )
    with client(tmp_path, factory_file=factory)[0] as http:
        assert http.get("/api/layout").status_code == 401
    http, verifier = client(tmp_path, factory_file=factory)
    with http:
        token = verifier.mint("ada", Role.VIEWER, 60)
        body = http.get("/api/layout", headers={"Authorization": f"Bearer {token}"}).json()
    assert body["name"] == "tiny"
    assert [s["input_buffer"] for s in body["lines"][0]["stations"]] == [None, 5]  # the default capacity


def test_a_bad_factory_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("lines: []\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        client(tmp_path, factory_file=bad)


def test_the_built_client_is_served_at_the_root_and_api_routes_still_win(tmp_path: Path) -> None:
    web = tmp_path / "dist"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>twin</title>")
    (web / "assets" / "app.js").write_text("console.log(1)")
    http, _ = client(tmp_path, web_dir=web)
    with http:
        assert "<title>twin</title>" in http.get("/").text
        assert http.get("/assets/app.js").headers["content-type"].startswith("text/javascript")
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/api/machines").status_code == 401


def test_without_a_build_the_root_says_how_to_build_it(tmp_path: Path) -> None:
    http, _ = client(tmp_path, web_dir=tmp_path / "nothing")
    with http:
        answer = http.get("/")
    assert answer.status_code == 503 and "make web" in answer.text
