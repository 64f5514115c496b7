"""The WebXR client in Debian's headless Chromium, driven by Playwright, against a real gateway, the
real broker and (for the ack round trip) a real processing worker.

The page is the production build (``make web``) served by the gateway at ``/``. Screenshots and the
measured page latencies are written under ``.twin/test-artifacts/browser/`` (``TWIN_TEST_ARTIFACTS``).
No browser is ever downloaded: ``/usr/bin/chromium`` comes from Debian (``make browser``).
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from localstack import Infra
from tests.integration.browser_helpers import CHROMIUM, need
from tests.integration.processors.pipeline_helpers import namespace
from tests.integration.xr_gateway.gateway_helpers import Publisher, RunningGateway, running_gateway, state
from twin.settings import Settings
from xr_gateway.app import WEB_DIST
from xr_gateway.auth import Role

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("TWIN_TEST_ARTIFACTS", ROOT / ".twin" / "test-artifacts")) / "browser"
LINE = "line-1"
MACHINES = ("cnc-1", "press-1", "weld-1", "paint-1", "qc-1")  # the built-in layout's stations
# Distinct states, so the colour under each machine tells them apart.
STATES = {"cnc-1": "RUNNING", "press-1": "DOWN", "weld-1": "IDLE", "paint-1": "SETUP", "qc-1": "RUNNING"}
WAIT_MS = 30_000  # generous: these waits are for correctness, not speed (the latency is recorded)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need(CHROMIUM.exists(), f"{CHROMIUM} missing: `make browser` installs Debian's chromium")
    need((WEB_DIST / "index.html").is_file(), "the WebXR client is not built: run `make web`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        # SwiftShader gives headless Chromium a software WebGL2.
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--enable-unsafe-swiftshader"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def gateway(
    stack: Infra, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    with running_gateway(settings, tmp_path_factory.mktemp("browser-gateway")) as running:
        yield running


class Pages:
    """Browser pages with their JavaScript errors collected; every page is closed at the end."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.errors: list[str] = []
        self.contexts: list[Any] = []

    def open(self, url: str) -> Page:
        context = self.browser.new_context(viewport={"width": 1280, "height": 800})
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{url}: {exc}"))
        page.goto(url)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    opened.close()
    assert not opened.errors, f"JavaScript errors on the page: {opened.errors}"


def page_url(gateway: RunningGateway, token: str) -> str:
    return f"{gateway.http_url}/#token={token}"


def wait_connected(page: Page) -> None:
    page.wait_for_function(
        "() => window.twin && window.twin.ready && window.twin.connection === 'connected'", timeout=WAIT_MS
    )
    assert page.get_attribute("#connection", "data-state") == "connected"


def label_state(page: Page, machine: str) -> str | None:
    return page.get_attribute(f".machine-label[data-machine='{machine}']", "data-state")


def wait_label(page: Page, machine: str, attribute: str, value: str) -> None:
    page.wait_for_selector(
        f".machine-label[data-machine='{machine}'][data-{attribute}='{value}']",
        state="attached",
        timeout=WAIT_MS,
    )


def publish_states(publisher: Publisher, states: dict[str, str], parts: int) -> None:
    records = []
    for machine, machine_state in states.items():
        record = state(machine, LINE, parts)
        record["state"] = machine_state
        records.append(("twin.state", record))
    publisher.send_all(records)


def rgb(hex_color: str) -> tuple[int, int, int]:
    value = hex_color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def hue_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """Distance between normalised colours: lighting scales brightness, not the mix of channels."""
    sa, sb = sum(a) or 1, sum(b) or 1
    return sum(abs(x / sa - y / sb) for x, y in zip(a, b, strict=True))


def test_page_loads_connects_and_draws_every_machine_in_its_state_colour(
    gateway: RunningGateway, publisher: Publisher, pages: Pages
) -> None:
    publish_states(publisher, STATES, parts=1)
    gateway.wait_state("qc-1", 1)
    page = pages.open(page_url(gateway, gateway.token(Role.VIEWER)))
    wait_connected(page)
    for machine, machine_state in STATES.items():
        wait_label(page, machine, "state", machine_state)
    page.screenshot(path=ARTIFACTS / "floor.png")

    shown: dict[str, dict[str, Any]] = page.evaluate("() => window.twin.machines()")
    assert set(MACHINES) <= set(shown), f"machines missing from the scene: {set(MACHINES) - set(shown)}"
    canvas = page.locator("canvas").first
    box = canvas.bounding_box()
    assert box is not None
    image = Image.open(io.BytesIO(canvas.screenshot(path=ARTIFACTS / "canvas.png"))).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "the canvas is blank (a handful of colours at most)"

    # Under each machine's centre the pixels have its state colour (nearest of the shown colours).
    palette = {m: rgb(v["color"]) for m, v in shown.items() if m in MACHINES}
    assert len(set(palette.values())) >= 4, f"states should have distinct colours: {palette}"
    for machine in MACHINES:
        pos = page.evaluate("(m) => window.twin.screenPosition(m)", machine)
        x, y = int(pos["x"]), int(pos["y"])
        assert 0 <= x < image.width and 0 <= y < image.height, f"{machine} is off the canvas at {pos}"
        raw = image.getpixel((x, y))
        assert isinstance(raw, tuple)
        pixel = (int(raw[0]), int(raw[1]), int(raw[2]))
        nearest = min(set(palette.values()), key=lambda c: hue_distance(pixel, c))
        assert nearest == palette[machine], (
            f"{machine} ({STATES[machine]}) should show {palette[machine]}, the pixel at {x},{y} is {pixel}"
        )


def test_a_state_change_in_kafka_shows_on_the_page(
    gateway: RunningGateway, publisher: Publisher, pages: Pages
) -> None:
    publish_states(publisher, {"weld-1": "RUNNING"}, parts=2)
    gateway.wait_state("weld-1", 2)
    page = pages.open(page_url(gateway, gateway.token(Role.VIEWER)))
    wait_connected(page)
    wait_label(page, "weld-1", "state", "RUNNING")

    # Each change: produced (and acknowledged by the broker), then waited for on the page. The
    # delay is recorded for the closing note and docs, not asserted (no timing assertions in tests).
    delays: list[float] = []
    for i, new_state in enumerate(("DOWN", "RUNNING", "BLOCKED", "STARVED", "RUNNING", "DOWN")):
        record = state("weld-1", LINE, 10 + i)
        record["state"] = new_state
        t0 = time.perf_counter()
        publisher.send_all([("twin.state", record)])
        wait_label(page, "weld-1", "state", new_state)
        delays.append(time.perf_counter() - t0)
    page.screenshot(path=ARTIFACTS / "state-change.png")
    (ARTIFACTS / "state-change-latency.json").write_text(
        json.dumps({"seconds": delays, "max_s": max(delays)}, indent=2)
    )
    print(f"state change → page: {', '.join(f'{d * 1000:.0f} ms' for d in delays)}")
    assert label_state(page, "weld-1") == "DOWN"


def test_an_unauthenticated_page_is_refused(gateway: RunningGateway, pages: Pages) -> None:
    anonymous = pages.open(f"{gateway.http_url}/")
    anonymous.wait_for_selector("#login", state="visible", timeout=WAIT_MS)
    assert anonymous.get_attribute("#connection", "data-state") != "connected"
    anonymous.screenshot(path=ARTIFACTS / "no-token.png")

    expired = gateway.verifier.mint("tester", Role.VIEWER, -120)  # past exp and the 30 s leeway
    for name, token in (("forged", "not.a.jwt"), ("expired", expired)):
        page = pages.open(page_url(gateway, token))
        page.wait_for_selector("#connection[data-state='refused']", state="attached", timeout=WAIT_MS)
        page.wait_for_selector("#login", state="visible", timeout=WAIT_MS)
        assert (
            page.evaluate(
                "() => Object.keys(window.twin.machines()).filter(m => window.twin.machines()[m].state).length"
            )
            == 0
        )
        page.screenshot(path=ARTIFACTS / f"refused-{name}.png")


def test_an_operator_ack_round_trips_through_the_processors_to_every_open_page(
    stack: Infra, settings: Settings, browser: Browser, pages: Pages, tmp_path: Path
) -> None:
    with namespace(settings, tmp_path) as ns:
        ns.produce_sim(hours=0.35)  # bearing wear on cnc-1 from 600 s: HighVibration raised, still active
        ns.start_worker()
        ns.wait_processed()
        with running_gateway(settings, tmp_path, prefix=ns.prefix) as gw:
            operator = f"op-{uuid.uuid4().hex[:6]}"
            urls = [
                page_url(gw, gw.token(Role.OPERATOR, operator)),
                page_url(gw, gw.token(Role.OPERATOR, "second-operator")),
                page_url(gw, gw.token(Role.VIEWER, "viewer")),
            ]
            opened = [pages.open(url) for url in urls]
            for page in opened:
                wait_connected(page)
                page.wait_for_selector(
                    ".machine-label[data-machine='cnc-1']:not([data-alarms='0'])",
                    state="attached",
                    timeout=WAIT_MS,
                )
                select(page, "cnc-1")
            first = opened[0]
            item = first.locator("#panel .alarm[data-status='ACTIVE_UNACK']").first
            item.wait_for(timeout=WAIT_MS)
            alarm_id = item.get_attribute("data-alarm-id")
            assert alarm_id
            first.screenshot(path=ARTIFACTS / "before-ack.png")
            item.locator("button.ack").click()
            for n, page in enumerate(opened):
                page.wait_for_selector(
                    f"#panel .alarm[data-alarm-id='{alarm_id}'][data-status='ACTIVE_ACK']",
                    state="attached",
                    timeout=WAIT_MS,
                )
                page.screenshot(path=ARTIFACTS / f"after-ack-page{n}.png")
            # A viewer sees the alarms but is offered no Ack/Clear (the gateway would refuse them anyway).
            viewer = opened[2]
            assert viewer.locator("#panel .alarm").count() >= 1
            assert viewer.locator("#panel .alarm button:visible").count() == 0
            acked = [a for a in ns.outputs("twin.alarms")["twin.alarms"] if a["alarm_id"] == alarm_id]
            assert acked and acked[-1]["status"] == "ACTIVE_ACK" and acked[-1]["acked_by"] == operator


def select(page: Page, machine: str) -> None:
    """Click the machine's body in the 3D view; the side panel opens on it."""
    pos = page.evaluate("(m) => window.twin.screenPosition(m)", machine)
    canvas = page.locator("canvas").first
    canvas.click(position={"x": pos["x"], "y": pos["y"]})
    page.wait_for_selector(f"#panel[data-machine='{machine}']", state="visible", timeout=WAIT_MS)
