"""The shared browser client (dashboard/assets/hub.js) in real Chromium: live state, resume, outbox."""

from __future__ import annotations

import re
import time

from .browser import Pages
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
    await page.context.set_offline(True)
    await page.evaluate("window.conn.ws.close()")
    await page.wait_for_function("window.conn.status === 'offline'", timeout=5000)
    await page.evaluate("""window.conn.submit('question.submit', {site: 'sa-thay', topic: 'training',
        delegate: {name: 'Y Nhung', unit: 'Thủy điện Sa Thầy'}, text: 'Đề nghị mở lớp đào tạo tại huyện.'})""")
    assert len(await page.evaluate("window.conn.outbox()")) == 1
    await page.context.set_offline(False)
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
