"""The analytics report page (jobs.spark.report_html) in Debian's headless Chromium, driven by Playwright.

No servers and no Spark: the report is drawn from the unit tests' pandas frames into ``tmp_path`` and
opened as a ``file://`` page with the network blocked, so anything it tried to fetch would fail the
test. The full-page screenshot goes to ``.twin/test-artifacts/browser/report.png``
(``TWIN_TEST_ARTIFACTS``) and to ``/tmp/report_screenshot.png``. No browser is ever downloaded:
``/usr/bin/chromium`` comes from Debian (``make browser``).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Route, sync_playwright

from jobs.spark.report_html import REPORT_SECTIONS, write_report
from tests.integration.browser_helpers import CHROMIUM, need
from tests.unit.jobs.test_report_html import REPORT_ARGS, report_tables

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("TWIN_TEST_ARTIFACTS", ROOT / ".twin" / "test-artifacts")) / "browser"
SCREENSHOT_COPY = Path("/tmp/report_screenshot.png")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need(CHROMIUM.exists(), f"{CHROMIUM} missing: `make browser` installs Debian's chromium")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


def test_report_renders_in_chromium(browser: Browser, tmp_path: Path) -> None:
    files = write_report(report_tables(), tmp_path, **REPORT_ARGS)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    errors: list[str] = []

    def refuse(route: Route) -> None:  # the page must need nothing but itself
        requests.append(route.request.url)
        route.abort()

    try:
        context.route("http*://**/*", refuse)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(files.html.as_uri())
        page.wait_for_load_state("load")

        assert page.title() == REPORT_ARGS["title"]
        for section, heading in REPORT_SECTIONS:
            assert page.locator(f"section#{section} h2").inner_text() == heading
        waterfall = page.locator("figure[data-chart='waterfall'] svg").first
        waterfall.scroll_into_view_if_needed()
        assert waterfall.is_visible()
        box = waterfall.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 250
        assert page.locator("svg[data-chart]").count() == len(REPORT_SECTIONS)
        # nothing is wider than the page (no clipped tables or charts)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280

        png = page.screenshot(full_page=True)
        chart_png = waterfall.screenshot()
    finally:
        context.close()

    assert not requests, f"the page tried to fetch {requests}"
    assert not errors, errors
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.png").write_bytes(png)
    (ARTIFACTS / "report-waterfall.png").write_bytes(chart_png)
    shutil.copyfile(ARTIFACTS / "report.png", SCREENSHOT_COPY)

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    height, width, _ = image.shape
    assert width == 1280 and height > 4000, image.shape  # nine sections, one below the other
    non_white = float((image.min(axis=2) < 235).mean())
    colours = len(np.unique(image.reshape(-1, 3)[::7], axis=0))
    assert non_white > 0.05, f"the page is nearly blank ({non_white:.1%} non-white)"
    assert colours > 200, f"only {colours} distinct colours"

    chart = np.asarray(Image.open(io.BytesIO(chart_png)).convert("RGB"))
    blue = (np.abs(chart.astype(int) - [0x00, 0x72, 0xB2]).sum(axis=2) < 40).mean()  # the subtotal bars
    red = (np.abs(chart.astype(int) - [0xD5, 0x5E, 0x00]).sum(axis=2) < 40).mean()  # availability losses
    assert blue > 0.02 and red > 0.001, (blue, red)
