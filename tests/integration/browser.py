"""The real browser of the page tests: Debian's Chromium driven by Playwright.

Its fixtures (``installed``, ``browser``, ``page``) are the integration conftest's; ``data``
reads the elements a test asserts on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
VENDOR = ROOT / "stream" / "web" / "static" / "vendor"
ARTIFACTS = ROOT / "test-artifacts"
LIBRARIES = ("chart.umd.js", "dagre.min.js")  # fetched from npm by deploy/local/ui_vendor.sh


@pytest.fixture(scope="module")
def installed() -> None:
    """Debian's Chromium and the vendored libraries are there (fail loudly if not)."""
    if not CHROMIUM.exists():
        pytest.fail(f"no {CHROMIUM}: apt-get install -y --no-install-recommends chromium")
    for library in LIBRARIES:
        if not (VENDOR / library).exists():
            pytest.fail(f"no {library} in {VENDOR}: run deploy/local/ui_vendor.sh")
    ARTIFACTS.mkdir(exist_ok=True)


@pytest.fixture(scope="module")
async def browser(installed: None) -> AsyncIterator[Browser]:
    """Headless Debian Chromium, one for the module."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh tab (its own sessionStorage) that fails the test on any script error."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    await context.close()
    assert errors == [], f"script errors in the page: {errors}"


async def data(page: Page, selector: str) -> list[dict[str, str]]:
    """The data-* attributes and text of every element (SVG too) matching ``selector``."""
    return await page.locator(selector).evaluate_all(
        "nodes => nodes.map(n => ({...n.dataset, text: n.innerText ?? n.textContent}))"
    )
