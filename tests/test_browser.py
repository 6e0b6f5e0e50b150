"""The page in a real browser: Debian's headless Chromium, driven by Selenium through Debian's
chromedriver, against the demo's daemon on loopback while the February 2026 story plays.

Chromium starts with a fresh profile and its background services off, so it sends nothing
anywhere but to the page on 127.0.0.1. Screenshots are kept in test-artifacts/ (or
$NSDI_TEST_ARTIFACTS) for a person to look at.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from atom import ATOM, validate

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(
    os.environ.get("NSDI_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts")
)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-first-run", "--window-size=1280,1000",
)  # fmt: skip


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(DRIVER, os.X_OK)):
        pytest.fail("Chromium is missing: `make test` installs chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="nsdi-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # Both paths given: Selenium Manager is not asked to find or fetch anything.
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def keep(driver: Any, name: str) -> None:
    """A screenshot of the page as it is now, kept as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / name))


def national(driver: Any, domain: str) -> str | None:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f'tr[data-domain="{domain}"]')
    return found[0].get_attribute("data-verdict") if found else None


async def test_the_page_in_chromium_while_the_demo_plays(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nsdi_tracker", "demo", "--no-dashboard", "--speed", "3",
        "--dir", str(tmp_path / "demo"), "--listen", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert demo.stdout is not None
    said: list[str] = []
    base = None
    while base is None:
        line = (await asyncio.wait_for(demo.stdout.readline(), 30)).decode()
        assert line, f"the demo ended before serving its page: {said}"
        said.append(line)
        if m := re.search(r"the page: (http://127\.0\.0\.1:\d+)/", line):
            base = m.group(1)
    reader = asyncio.ensure_future(demo.stdout.read())  # the rest of the narration

    # The overview shows youtube.com removed once the removal is confirmed (round 4).
    deadline = time.monotonic() + 60
    while True:
        await asyncio.to_thread(browser.get, base + "/")
        verdict = national(browser, "youtube.com")
        if verdict == "removed":
            break
        assert verdict in (None, "new", "present"), verdict  # nothing else is shown as news
        assert time.monotonic() < deadline, "youtube.com never showed as removed"
        await asyncio.sleep(0.4)
    cell = browser.find_element(By.CSS_SELECTOR, 'tr[data-domain="youtube.com"] td.cell .badge')
    assert cell.text == "removed"
    colour = cell.value_of_css_property("background-color")
    assert colour in ("rgba(198, 40, 40, 1)", "rgb(198, 40, 40)"), colour  # the palette's red
    keep(browser, "page-overview.png")

    # The domain page's timeline has a removed span, drawn with a width.
    await asyncio.to_thread(browser.get, base + "/domains/youtube.com")
    spans = browser.find_elements(By.CSS_SELECTOR, "#timeline svg rect.v-removed")
    assert spans and all(float(s.get_attribute("width")) > 0 for s in spans)
    assert {s.get_attribute("data-verdict") for s in spans} == {"removed"}
    keep(browser, "page-domain.png")

    # Russian words with ?lang=ru; the domain names as they are.
    await asyncio.to_thread(browser.get, base + "/?lang=ru")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "удалён" in body and "Итог по НСДИ" in body and "youtube.com" in body
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ru"

    # The Atom feed is valid Atom and holds the removal.
    async with aiohttp.ClientSession() as session, session.get(base + "/feed.atom") as r:
        feed = validate(await r.read())
    titles = [e.findtext(ATOM + "title") for e in feed.findall(ATOM + "entry")]
    assert "youtube.com: removed on national" in titles

    assert await asyncio.wait_for(demo.wait(), 90) == 0
    narration = "".join(said) + (await reader).decode()
    assert "round 4: youtube.com removed from the national system" in narration
