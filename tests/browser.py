"""Real headless Chromium (Debian's package) driven by Playwright, for page tests.

`pages.open(hub, path, token)` gives a Playwright page that records console errors and any request
leaving the hub's origin; at the end every page is screenshotted into test-artifacts/ and checked
clean. The fixtures are registered for every test module by conftest.py.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, async_playwright

from .conftest import ROOT, RunningHub

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run `make test` (it installs Debian's chromium) or apt-get install chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@dataclass
class Watched:
    page: Page
    context: BrowserContext
    origin: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)


class Pages:
    """Opens watched pages against a running hub and cleans up after the test."""

    def __init__(self, browser: Browser, test_name: str) -> None:
        self.browser = browser
        self.test_name = re.sub(r"[^\w.-]+", "_", test_name)
        self.watched: list[Watched] = []

    async def open(self, hub: RunningHub, path: str, token: str | None = None, *,
                   viewport: dict[str, int] | None = None, wait: bool = True) -> Page:
        context = await self.browser.new_context(
            viewport=viewport or {"width": 1366, "height": 900}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
        page = await context.new_page()
        watched = Watched(page, context, _origin(hub.url))
        page.on("console", lambda msg: msg.type == "error" and watched.console_errors.append(msg.text))
        page.on("pageerror", lambda exc: watched.console_errors.append(str(exc)))
        page.on("request", lambda req: _origin(req.url) not in (watched.origin, "data:")
                and watched.foreign_requests.append(req.url))
        self.watched.append(watched)
        url = f"{hub.url}{path}" + (f"#token={token}" if token else "")
        await page.goto(url, wait_until="load" if wait else "commit")
        return page

    def problems(self, page: Page | None = None) -> list[str]:
        """Console errors and off-origin requests seen so far (for one page or all)."""
        out = []
        for w in self.watched:
            if page is None or w.page is page:
                out += [f"console error: {e}" for e in w.console_errors]
                out += [f"request outside the hub: {u}" for u in w.foreign_requests]
        return out

    async def finish(self) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        for index, w in enumerate(self.watched):
            suffix = f"-{index}" if len(self.watched) > 1 else ""
            if not w.page.is_closed():
                await w.page.screenshot(path=str(ARTIFACTS / f"{self.test_name}{suffix}.png"), full_page=True)
            await w.context.close()


class HubLink:
    """Cuts and restores a page's websocket to the hub: a cut closes every new connection attempt, which
    `context.set_offline` alone does not do for websockets in Chromium. With `hang=True` an attempt opens
    instead and is never answered, as when the network under a half-made connection went away."""

    def __init__(self, page: Page) -> None:
        self.page, self.blocked, self.hang = page, False, False
        self.tried = asyncio.Event()  # set at each connection attempt; clear it to wait for the next

    async def cut(self, hang: bool = False) -> None:
        self.blocked, self.hang = True, hang
        await self.page.context.route_web_socket("**/ws", self._route)

    async def restore(self, announce: bool = True) -> None:
        """Let connections through again and (unless `announce` is false) tell the page the network is back."""
        self.blocked = False
        if announce:
            await self.page.evaluate("window.dispatchEvent(new Event('online'))")

    async def _route(self, ws: WebSocketRoute) -> None:
        self.tried.set()
        if not self.blocked:
            ws.connect_to_server()
        elif not self.hang:
            await ws.close()


def _origin(url: str) -> str:
    if url.startswith(("data:", "blob:", "about:")):
        return "data:"
    parts = urlsplit(url)
    return f"{parts.scheme.replace('ws', 'http', 1)}://{parts.netloc}"


@pytest.fixture
async def pages(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Pages]:
    opened = Pages(browser, request.node.name)
    yield opened
    problems = opened.problems()
    await opened.finish()
    assert not problems, f"page problems: {problems}"
