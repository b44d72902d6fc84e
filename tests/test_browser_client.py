"""The shared browser client (dashboard/assets/hub.js, i18n.js) in real Chromium: live state, resume,
outbox, reconnecting when the network is back, the remembered language."""

from __future__ import annotations

import re
import time

import pytest
from playwright.async_api import expect

from .browser import HubLink, Pages
from .conftest import RunningHub

CLIENT = """async (token) => {
  const { HubConnection } = await import('/assets/hub.js');
  window.conn = new HubConnection(token).start();
  window.changes = [];
  conn.addEventListener('state', (e) => window.changes.push(e.detail.sites));
}"""


async def test_client_gets_snapshot_then_live_changes(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open(hub, "/healthz")
    await page.evaluate(CLIENT, hub.token("chair"))
    await page.wait_for_function("window.conn.state && window.conn.state.sites.size === 11", timeout=5000)
    registrar = await hub.client("registrar", site="dak-ha")
    await registrar.call("attendance.set", site="dak-ha", category="workers", count=212)
    await page.wait_for_function("window.conn.state.totals.attendance === 212", timeout=5000)
    changed = await page.evaluate("window.changes.flat()")
    assert "dak-ha" in changed
    assert await page.evaluate("window.conn.state.sites.get('dak-ha').attendance.workers") == 212


async def test_outbox_survives_reload_and_sends_exactly_once(hub: RunningHub, pages: Pages) -> None:
    token = hub.token("registrar", site="sa-thay")
    page = await pages.open(hub, "/healthz")
    await page.evaluate(CLIENT, token)
    await page.wait_for_function("window.conn.status === 'online'", timeout=5000)
    link = HubLink(page)  # refuses every reconnect (set_offline made Chromium log each try as a console error)
    await link.cut()
    await page.evaluate("window.conn.ws.close()")
    await page.wait_for_function("window.conn.status === 'offline'", timeout=5000)
    await page.evaluate("""window.conn.submit('question.submit', {site: 'sa-thay', topic: 'training',
        delegate: {name: 'Y Nhung', unit: 'Thủy điện Sa Thầy'}, text: 'Đề nghị mở lớp đào tạo tại huyện.'})""")
    assert len(await page.evaluate("window.conn.outbox()")) == 1
    assert hub.hub.log.count() == 0
    await link.restore(announce=False)
    await page.reload()
    await page.evaluate(CLIENT, token)
    await page.wait_for_function("window.conn.status === 'online' && window.conn.outbox().length === 0", timeout=10000)
    questions = [q for q in hub.hub.state.questions.values() if q.site == "sa-thay"]
    assert len(questions) == 1 and questions[0].delegate["name"] == "Y Nhung"
    assert hub.hub.log.count() == 1


async def test_op_ids_sort_by_time_so_the_log_index_takes_them_at_its_end(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open(hub, "/healthz")
    ids = await page.evaluate("""async () => {
      const { newOpId } = await import('/assets/hub.js');
      const ids = [];
      for (let i = 0; i < 3; i++) { ids.push(newOpId()); await new Promise((r) => setTimeout(r, 5)); }
      return ids;
    }""")
    assert all(re.fullmatch(r"[0-9a-f]{32}", op_id) for op_id in ids), ids
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert abs(int(ids[0][:12], 16) / 1000 - time.time()) < 60  # the first 12 hex digits: the time in ms


async def test_back_online_the_outbox_goes_at_once_not_after_the_backoff(hub: RunningHub, pages: Pages) -> None:
    """After a long outage the next retry is up to 10 s away; the browser's `online` event does not wait for it."""
    page = await pages.open(hub, "/healthz")
    await page.evaluate(CLIENT, hub.token("registrar", site="dak-glei"))
    await page.wait_for_function("window.conn.status === 'online'", timeout=5000)
    link = HubLink(page)
    await link.cut()
    await page.evaluate("window.conn.attempt = 20; window.conn.ws.close()")  # as after 20 failed tries: 0-10 s
    await page.wait_for_function("window.conn.status === 'offline' && window.conn.timer", timeout=5000)
    await page.evaluate("""window.conn.submit('attendance.set', {site: 'dak-glei', category: 'workers', count: 180})""")
    await link.restore()
    await page.wait_for_function("window.conn.status === 'online' && window.conn.outbox().length === 0", timeout=5000)
    assert hub.hub.state.sites["dak-glei"].attendance == {"workers": 180}


ENGLISH = [  # page, token role and binding, an element, its English text
    ("/", ("chair",), "[data-i18n='link.report']", "Report"),
    ("/moderator", ("moderator",), "[data-i18n='mod.phase']", "Phase"),
    ("/projector", ("viewer",), "#site-label", "Site on the floor"),
    ("/technician", ("technician", "dak-ha"), "#status-title", "Site status"),
    ("/registrar", ("registrar", "dak-ha"), "#att-title", "Attendance"),
    ("/agency", ("agency", None, "sldtbxh"), "#q-title", "Questions assigned to the agency"),
    ("/report", ("chair",), "h1", "Conference report"),
]


@pytest.mark.parametrize("path, token, selector, english", ENGLISH, ids=[row[0] for row in ENGLISH])
async def test_english_is_remembered_by_the_browser(hub: RunningHub, pages: Pages, path: str, token: tuple,
                                                    selector: str, english: str) -> None:
    """Choose English (the switch; the projector's ?lang=en), then reload or open the page again: still English."""
    page = await pages.open(hub, path + ("?lang=en" if path == "/projector" else ""), hub.token(*token))
    if path == "/report":
        await page.click("a[data-lang=en]")
    elif path != "/projector":
        await page.click(".lang-switch button[data-lang=en]")
    await expect(page.locator(selector)).to_have_text(english, timeout=15000)
    await page.reload()
    await expect(page.locator(selector)).to_have_text(english, timeout=15000)
    await page.goto(hub.url + path)  # opened again without ?lang= (the chair's "Report" link, the projector's start-up)
    await expect(page.locator(selector)).to_have_text(english, timeout=15000)
    assert await page.evaluate("document.documentElement.lang") == "en"
