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
REFUSED = r"WebSocket connection to 'ws://[^']+/ws' failed: .*ERR_CONNECTION_REFUSED"  # Chromium, on a dead node


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
        self.allowed: list[re.Pattern[str]] = []
        self.origins: set[str] = set()  # other origins pages may call (a cluster's other nodes)

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

    def allow_console(self, pattern: str) -> None:
        """Console errors the test expects (e.g. Chromium's line for each refused connection to a dead node)."""
        self.allowed.append(re.compile(pattern))

    def allow_origins(self, *urls: str) -> None:
        """Origins beyond the page's own that it may call: a cluster's other nodes, once it failed over."""
        self.origins.update(_origin(url) for url in urls)

    def problems(self, page: Page | None = None) -> list[str]:
        """Console errors (but those allowed) and off-origin requests seen so far (for one page or all)."""
        out = []
        for w in self.watched:
            if page is None or w.page is page:
                out += [f"console error: {e}" for e in w.console_errors if not any(p.search(e) for p in self.allowed)]
                out += [f"request outside the hub: {u}" for u in w.foreign_requests if _origin(u) not in self.origins]
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


# Every visible element's own text colour, background, drawn borders and SVG paint that is red (hue within 15
# degrees of pure red, chroma >= 60: --lost and its kin, not pale tints or the orange of "degraded").
_RED_MARKS = """() => {
  const red = (value) => {
    const [r, g, b, a = 1] = (value.match(/[\\d.]+/g) || []).map(Number);
    if (r === undefined || a === 0) return false;
    const max = Math.max(r, g, b), min = Math.min(r, g, b);
    if (max !== r || max - min < 60) return false;
    const hue = (60 * (g - b)) / (max - min);
    return hue <= 15 && hue >= -15;
  };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!el.checkVisibility()) continue;
    const cs = getComputedStyle(el);
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const paints = [];
    if (text || el.matches(".status")) paints.push(["color", cs.color]);
    paints.push(["background", cs.backgroundColor]);
    for (const side of ["top", "right", "bottom", "left"]) {
      if (parseFloat(cs.getPropertyValue(`border-${side}-width`)) > 0 && cs.getPropertyValue(`border-${side}-style`) !== "none") {
        paints.push([`border-${side}`, cs.getPropertyValue(`border-${side}-color`)]);
      }
    }
    if (el instanceof SVGElement) paints.push(["fill", cs.fill], ["stroke", cs.stroke]);
    for (const [what, value] of paints) {
      if (red(value)) out.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")} `
        + `${what} ${value}: ${el.textContent.trim().slice(0, 60)}`);
    }
  }
  return out;
}"""


async def red_marks(page: Page) -> list[str]:
    """What a page paints red right now: on a meeting with nothing wrong, that must be nothing."""
    return await page.evaluate(_RED_MARKS)


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
