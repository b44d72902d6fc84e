"""The technician's page in real headless Chromium: check in, tick items, incidents, live status, offline."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page, expect

from hub.config import Config, Heartbeat

from .browser import HubLink, Pages
from .conftest import RunningHub, StartHub

PHONE = {"width": 390, "height": 844}
SITE = "dak-ha"


async def online(page: Page) -> None:
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "online")


async def check_in_and_tick(page: Page, running: RunningHub) -> None:
    await page.fill("input[name=technician]", "Nguyễn Văn Hùng")
    await page.fill("input[name=phone]", "0260 3862 123")
    await page.click("#checkin-form button[type=submit]")
    await expect(page.locator("#checked-in")).to_contain_text("Đã nhận ca: Nguyễn Văn Hùng")
    for item in running.config.checklist:
        if item.required:
            await page.get_by_label(item.name).check()


def fast_heartbeats(config: Config) -> Config:
    return config.model_copy(update={"heartbeat": Heartbeat(interval_seconds=0.5, timeout_seconds=2)})


async def test_check_in_tick_items_and_incidents(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open(hub, "/technician", hub.token("technician", site=SITE), viewport=PHONE)
    await online(page)
    await expect(page.locator("#site-name")).to_have_text("Huyện Đắk Hà")
    await expect(page.locator("#status")).to_have_text("Chưa kết nối")
    await expect(page.get_by_label("Âm thanh, micro, loa")).to_be_disabled()  # check in first

    await check_in_and_tick(page, hub)
    status = page.locator("#status")
    await expect(status).to_have_text("Sẵn sàng")
    await expect(status).to_have_class("status status-ready")
    site = hub.hub.state.sites[SITE]
    assert (site.technician, site.phone) == ("Nguyễn Văn Hùng", "0260 3862 123")
    assert all(site.checks[item] for item in hub.config.required_checks)
    assert site.measurements["rtt_ms"] >= 0  # the page's own heartbeat, with its round trip

    await page.fill("#incident-note", "Micro chủ tọa bị rè")
    await page.click("#quick button[data-kind=audio]")
    incident = page.locator("#open-incidents li[data-kind=audio]")
    await expect(incident).to_contain_text("Mất tiếng")
    await expect(incident).to_contain_text("Micro chủ tọa bị rè")
    await expect(status).to_have_text("Có sự cố")
    await expect(page.locator("#hint")).to_contain_text("Còn 1 sự cố")
    [open_one] = site.open_incidents()
    assert (open_one.kind, open_one.note) == ("audio", "Micro chủ tọa bị rè")

    await incident.locator("button").click()
    await expect(page.locator("#no-incidents")).to_be_visible()
    await expect(status).to_have_text("Sẵn sàng")
    await page.get_by_label("Đường truyền mạng").uncheck()
    await expect(status).to_have_text("Có sự cố")
    await expect(page.locator("#hint")).to_contain_text("Còn thiếu: Đường truyền mạng")
    assert site.checks["network"] is False

    await page.click("#lang button[data-lang=en]")
    await expect(status).to_have_text("Degraded")
    await expect(page.locator("#checklist-title")).to_have_text("Checklist")
    await expect(page.locator("#quick button[data-kind=other]")).to_have_text("Other")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways on a phone"


async def test_heartbeats_lost_while_offline_and_back(start_hub: StartHub, config: Config, pages: Pages) -> None:
    running = await start_hub(fast_heartbeats(config))
    page = await pages.open(running, "/technician", running.token("technician", site=SITE))
    await online(page)
    await check_in_and_tick(page, running)
    await expect(page.locator("#status")).to_have_text("Sẵn sàng")
    site = running.hub.state.sites[SITE]
    first = site.last_heartbeat
    await asyncio.wait_for(_until(lambda: site.last_heartbeat != first), 10)  # the page keeps beating

    link = HubLink(page)
    await link.cut()  # the network is cut: no new connection gets through
    await running.hub.close_connections()
    banner = page.locator("[data-connection]")
    await expect(banner).to_have_attribute("data-connection", "offline", timeout=10000)
    await expect(banner).to_have_text("Mất kết nối — đang thử lại…")
    await asyncio.wait_for(_until(lambda: site.status == "lost"), 10)

    await link.restore()
    await online(page)
    # The page keeps showing the last status it was sent until its first heartbeat is back in.
    await asyncio.wait_for(_until(lambda: site.status == "ready"), 10)
    await expect(page.locator("#status")).to_have_text("Sẵn sàng", timeout=10000)
    await running.hub.release.wait(running.hub.state.seq)
    statuses = [e.data for e in running.hub.log.read(0) if e.type == "site.status" and e.site == SITE]
    assert statuses[-2:] == [{"status": "lost", "previous": "ready"}, {"status": "ready", "previous": "lost"}]


async def _until(check) -> None:
    while not check():
        await asyncio.sleep(0.05)
