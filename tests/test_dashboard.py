"""The chair's live view in real headless Chromium: tiles, totals, queue, trouble, deadline, reconnect, the national view."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from pathlib import Path

from playwright.async_api import Page, expect

from bench.genconfig import write_config
from hub.config import load_config
from hub.core import views

from .browser import ARTIFACTS, HubLink, Pages, red_marks
from .conftest import ManualClock, RunningHub, StartHub

LIVE = 5000  # ms: a change must show well within this; the page batches per animation frame


async def make_ready(hub: RunningHub, site: str) -> None:
    """Check a site in, report every required item ok and send a heartbeat: it becomes ready."""
    tech = await hub.client("technician", site=site)
    await tech.call("site.checkin", site=site, technician="Kỹ thuật viên")
    for item in hub.config.required_checks:
        await tech.call("site.check", site=site, item=item, ok=True)
    await tech.call("site.heartbeat", site=site, rtt_ms=40)


async def open_chair(pages: Pages, hub: RunningHub, **kwargs) -> Page:
    page = await pages.open(hub, "/", hub.token("chair"), **kwargs)
    await expect(page.locator(".tile")).to_have_count(len(hub.config.sites), timeout=LIVE)
    return page


def tile(page: Page, site: str):
    return page.locator(f'.tile[data-site="{site}"]')


async def test_tiles_and_totals_follow_commands_live(hub: RunningHub, pages: Pages) -> None:
    page = await open_chair(pages, hub)
    await expect(page.locator(".tile:visible")).to_have_count(11)  # a small event without groups: the tile grid
    await expect(page.locator(".group-row")).to_have_count(0)
    await expect(tile(page, "dak-ha").locator(".tile-status")).to_have_text("Chưa kết nối")
    await make_ready(hub, "dak-ha")
    await expect(tile(page, "dak-ha")).to_have_attribute("data-status", "ready", timeout=LIVE)
    await expect(tile(page, "dak-ha").locator(".tile-status")).to_have_text("Sẵn sàng")
    await expect(page.locator("#ready")).to_have_text("1")

    admin = await hub.client("admin")
    for site in hub.config.sites:
        await admin.call("attendance.set", site=site.id, category="workers", count=site.expected)
    await expect(page.locator("#present")).to_have_text("2.300", timeout=LIVE)
    await expect(page.locator("#expected")).to_have_text("2.300")
    await expect(tile(page, "tp-kon-tum").locator(".tile-present")).to_have_text("400")
    await expect(page.locator('#categories li[data-category="workers"] .n')).to_have_text("2.300")


async def test_site_search_ignores_apostrophes_and_hyphens(hub: RunningHub, pages: Pages) -> None:
    page = await open_chair(pages, hub)
    for query in ("hdrai", "ia hdrai", "H’Drai"):  # the site is "Huyện Ia H'Drai"
        await page.fill("#site-search", query)
        await expect(page.locator(".tile:visible")).to_have_count(1)
        await expect(tile(page, "ia-hdrai")).to_be_visible()


def at(config, hour: int, minute: int) -> ManualClock:
    """A hub clock on the event's day, at a local time."""
    return ManualClock(dt.datetime.combine(config.event.date, dt.time(hour, minute), config.event.tz).timestamp())


async def test_queue_order_floor_and_counts(start_hub: StartHub, config, pages: Pages) -> None:
    clock = at(config, 9, 0)  # in session: 2:30:00 left
    hub = await start_hub(clock=clock)
    page = await open_chair(pages, hub)
    mod = await hub.client("moderator")
    asked = []
    for site, name in (("dak-to", "A Hùng"), ("sa-thay", "Y Lan"), ("kon-ray", "A Tuấn")):
        answer = await mod.call("question.submit", site=site, topic="training", delegate={"name": name, "unit": "Công ty"},
                                text=f"Câu hỏi về đào tạo nghề của {name}", agency="sldtbxh")
        asked.append(answer["question"])
    for qid in asked:
        await mod.call("question.update", question=qid, status="queued")
    await mod.call("question.update", question=asked[2], position=0.5)  # moved to the front
    topic = page.locator('.topic[data-topic="training"] li')
    await expect(topic).to_have_count(3, timeout=LIVE)
    await expect(topic.first).to_have_attribute("data-question", asked[2], timeout=LIVE)  # the reorder has landed
    order = [await li.get_attribute("data-question") for li in await topic.all()]
    assert order == [asked[2], asked[0], asked[1]]
    await expect(page.locator("#q-queued")).to_have_text("3")

    await mod.call("question.update", question=asked[0], status="on_air")
    await expect(page.locator("#floor-now")).to_contain_text("A Hùng", timeout=LIVE)
    await expect(page.locator("#floor-now")).to_contain_text("Huyện Đắk Tô")
    await expect(page.locator(f'.topic li[data-question="{asked[0]}"]')).to_have_class("on_air")
    next_id = hub.hub.state.suggest_next()
    await expect(page.locator(f'.topic li[data-question="{next_id}"]')).to_have_class("queued next")

    clock.advance(150)  # one answer took two and a half minutes: that is the pace
    await mod.call("question.update", question=asked[0], status="answered")
    await mod.call("question.update", question=asked[1], status="deferred")
    await expect(page.locator("#q-answered")).to_have_text("1", timeout=LIVE)
    await expect(page.locator("#q-deferred")).to_have_text("1")
    await expect(page.locator("#q-queued")).to_have_text("1")
    await expect(page.locator("#time-left")).to_have_text(re.compile(r"^2:2\d:\d\d$"))  # 2:27:30 left at 09:02:30
    await expect(page.locator("#fit")).to_contain_text("1/1 câu chờ trả lời (trung bình 2:30/câu)")

    await page.locator("#call-next").click()  # the chair calls the suggested next site to the floor
    await expect(page.locator("#floor-now")).to_contain_text("A Tuấn", timeout=LIVE)
    assert hub.hub.state.floor["site"] == "kon-ray" and hub.hub.state.questions[asked[2]].status == "on_air"
    await expect(page.locator("#call-next")).to_be_hidden()  # nobody else is waiting


async def test_trouble_on_top_and_deadline_callout(start_hub: StartHub, config, pages: Pages) -> None:
    clock = at(config, 7, 5)  # the readiness deadline was 07:00
    hub = await start_hub(clock=clock)
    for site in ("tinh", "dak-glei", "ngoc-hoi"):
        await make_ready(hub, site)
    page = await open_chair(pages, hub)
    await expect(page.locator("#deadline-alert")).to_contain_text("8 điểm cầu chưa sẵn sàng", timeout=LIVE)
    await expect(page.locator("#deadline-alert")).to_contain_text("Huyện Kon Plông")
    await expect(page.locator("#deadline-alert")).not_to_contain_text("Huyện Ngọc Hồi")

    tech = await hub.client("technician", site="dak-glei")
    await tech.call("site.incident", site="dak-glei", kind="audio", open=True, note="Mất tiếng loa")
    clock.advance(20)  # heartbeats stop: ngoc-hoi and tinh go lost
    for site in ("tinh", "dak-glei"):
        await (await hub.client("technician", site=site)).call("site.heartbeat", site=site, rtt_ms=30)
    await expect(page.locator('#trouble li[data-site="ngoc-hoi"]')).to_contain_text("Mất kết nối", timeout=LIVE)
    await expect(page.locator('#trouble li[data-site="dak-glei"]')).to_contain_text("Có sự cố")
    lifted = [await li.get_attribute("data-site") for li in await page.locator("#trouble li").all()]
    assert lifted == ["ngoc-hoi", "dak-glei"]  # lost before degraded
    await expect(page.locator('#trouble li[data-site="ngoc-hoi"] .how-long')).to_contain_text("đã 0:")
    await expect(tile(page, "dak-glei").locator(".tile-incidents")).to_have_text("Mất tiếng: Mất tiếng loa")

    await page.check("#only-problems")
    await expect(tile(page, "tinh")).to_be_hidden()
    await expect(tile(page, "ngoc-hoi")).to_be_visible()


async def test_dropped_connection_is_shown_and_healed(hub: RunningHub, pages: Pages) -> None:
    page = await open_chair(pages, hub)
    await page.evaluate("""() => {
        window.seen = [];
        const banner = document.querySelector('[data-connection]');
        new MutationObserver(() => window.seen.push(banner.dataset.connection))
            .observe(banner, {attributes: true});
    }""")
    link = HubLink(page)  # every reconnect attempt is refused until restored (set_offline made Chromium log
    await link.cut()      # each one as a console error, whenever the backoff fell inside the cut)
    for conn in list(hub.hub.connections):
        await conn.close_going_away()
    banner = page.locator("[data-connection]")
    await expect(banner).to_have_attribute("data-connection", "offline", timeout=LIVE)
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Mất kết nối")
    registrar = await hub.client("registrar", site="kon-plong")
    await registrar.call("attendance.set", site="kon-plong", category="guests", count=37)
    await link.restore()
    await expect(tile(page, "kon-plong").locator(".tile-present")).to_have_text("37", timeout=15000)
    await expect(banner).to_have_attribute("data-connection", "online")
    assert "offline" in await page.evaluate("window.seen")


async def test_english_switch_and_phone(hub: RunningHub, pages: Pages) -> None:
    admin = await hub.client("admin")
    for site in hub.config.sites:
        await admin.call("attendance.set", site=site.id, category="workers", count=site.expected)
    page = await open_chair(pages, hub, viewport={"width": 390, "height": 844})
    await expect(page.locator("#present")).to_have_text("2.300", timeout=LIVE)
    await page.click('.lang-switch button[data-lang="en"]')
    await expect(page.locator("#present")).to_have_text("2,300", timeout=LIVE)
    await expect(tile(page, "tinh").locator(".tile-status")).to_have_text("Offline")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement !== document.body")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"


NATIONAL_SITES, PROVINCES = 3321, 34  # the central hall and 3,320 communes in 34 provinces


def group(page: Page, name: str):
    return page.locator(f'.group[data-group="{name}"]')


async def test_national_view_groups_first(start_hub: StartHub, tmp_path: Path, pages: Pages) -> None:
    """A row per province first, lifted with its trouble; a province opens to its tiles; the banner spans them all."""
    cfg = load_config(write_config(tmp_path / "national.toml", sites=NATIONAL_SITES, groups=PROVINCES))
    clock = ManualClock(dt.datetime.combine(cfg.event.date, dt.time(7, 0), cfg.event.tz).timestamp())
    hub = await start_hub(cfg=cfg, clock=clock, path=tmp_path / "national.db")
    started = time.perf_counter()
    page = await pages.open(hub, "/", hub.token("chair"))
    await expect(page.locator(".group-row")).to_have_count(PROVINCES, timeout=30000)
    first_render = time.perf_counter() - started
    in_page = await page.evaluate("performance.getEntriesByName('diemcau:first-render')[0].startTime")
    await expect(page.locator(".tile")).to_have_count(1)  # the central hall; the communes wait behind their rows
    await expect(tile(page, "tinh")).to_be_visible()
    await expect(group(page, "Cụm 1").locator(".group-ready")).to_have_text("0/98 sẵn sàng")
    await expect(group(page, "Cụm 1").locator(".group-present")).to_have_text("0/5.880 người")
    await expect(group(page, "Cụm 34").locator(".group-ready")).to_have_text("0/86 sẵn sàng")

    row = group(page, "Cụm 1").locator(".group-row")
    opened_in = await page.evaluate("""() => {
        const row = document.querySelector('.group[data-group="Cụm 1"] .group-row');
        const started = performance.now();
        row.click();
        document.body.offsetHeight;  // with its layout
        return performance.now() - started;
    }""")
    await expect(row).to_have_attribute("aria-expanded", "true")
    await expect(group(page, "Cụm 1").locator(".tile:visible")).to_have_count(98)

    await page.evaluate("""() => {
        window.longest = 0;
        new PerformanceObserver((list) => list.getEntries().forEach((e) => {
            window.longest = Math.max(window.longest, e.duration);
        })).observe({type: 'longtask'});
    }""")
    admin = await hub.client("admin")
    burst_started = time.perf_counter()
    for chunk in range(0, len(cfg.sites), 250):  # pipelined, within the connection's send queue
        await asyncio.gather(*(admin.call("attendance.set", site=s.id, category="workers", count=s.expected)
                               for s in cfg.sites[chunk:chunk + 250]))
    total = sum(s.expected for s in cfg.sites)
    await expect(page.locator("#present")).to_have_text(f"{total:,}".replace(",", "."), timeout=30000)
    await expect(group(page, "Cụm 34").locator(".group-present")).to_have_text("5.160/5.160 người", timeout=30000)
    await expect(group(page, "Cụm 1").locator(".group-present")).to_have_text("5.880/5.880 người", timeout=30000)
    await expect(tile(page, "xa-00098").locator(".tile-present")).to_have_text("60", timeout=30000)
    burst = time.perf_counter() - burst_started
    longest = await page.evaluate("window.longest")
    print(f"\n{NATIONAL_SITES:,} sites in {PROVINCES} groups: first render {first_render:.2f} s from navigation "
          f"({in_page / 1000:.2f} s in page); a group of 98 opened in {opened_in:.0f} ms; {NATIONAL_SITES:,} attendance "
          f"updates shown after {burst:.2f} s, longest main-thread task during the burst {longest:.0f} ms")
    await row.click()
    await expect(row).to_have_attribute("aria-expanded", "false")
    await expect(group(page, "Cụm 1").locator(".tile")).to_have_count(98)
    await expect(group(page, "Cụm 1").locator(".tile:visible")).to_have_count(0)

    for site in ("xa-00001", "xa-01500", "xa-03320"):  # in provinces 1, 16 and 34
        await make_ready(hub, site)
    await expect(group(page, "Cụm 16").locator(".group-ready")).to_have_text("1/98 sẵn sàng", timeout=LIVE)
    clock.advance(20)  # xa-00001's heartbeats stop: lost; xa-03320 loses its picture: degraded
    for site in ("xa-01500", "xa-03320"):
        await (await hub.client("technician", site=site)).call("site.heartbeat", site=site, rtt_ms=30)
    tech = await hub.client("technician", site="xa-03320")
    await tech.call("site.incident", site="xa-03320", kind="video", open=True, note="Camera hội trường không lên hình")
    lost = page.locator('#trouble li[data-site="xa-00001"]')
    degraded = page.locator('#trouble li[data-site="xa-03320"]')
    await expect(lost).to_contain_text("Mất kết nối", timeout=LIVE)
    await expect(lost.locator(".in-group")).to_have_text("Cụm 1")
    await expect(degraded.locator(".status-word")).to_have_text("Có sự cố", timeout=LIVE)
    await expect(degraded.locator(".incident")).to_have_text("Mất hình: Camera hội trường không lên hình")
    await expect(degraded.locator(".in-group")).to_have_text("Cụm 34")
    await expect(group(page, "Cụm 1").locator(".group-trouble")).to_have_text("Mất kết nối: 1")
    await expect(group(page, "Cụm 34").locator(".group-trouble")).to_have_text("Có sự cố: 1")
    await expect(group(page, "Cụm 34")).to_have_class(re.compile(r"\bhas-trouble\b"))
    await expect(group(page, "Cụm 16").locator(".group-trouble")).to_have_text("")
    tops = {name: (await group(page, name).bounding_box())["y"] for name in ("Cụm 1", "Cụm 2", "Cụm 34")}
    assert tops["Cụm 1"] < tops["Cụm 2"] and tops["Cụm 34"] < tops["Cụm 2"], f"groups in trouble are not lifted: {tops}"
    await page.screenshot(path=str(ARTIFACTS / "chair-national-groups.png"))

    await degraded.locator("button").click()  # from the banner to the tile, its group opened
    await expect(group(page, "Cụm 34").locator(".group-row")).to_have_attribute("aria-expanded", "true")
    await expect(tile(page, "xa-03320")).to_be_focused()
    await expect(tile(page, "xa-03320").locator(".tile-incidents")).to_have_text("Mất hình: Camera hội trường không lên hình")
    await expect(group(page, "Cụm 34").locator(".tile:visible")).to_have_count(86)

    await page.fill("#site-search", "xa so 1500")  # a search opens the groups holding its few matches
    await expect(tile(page, "xa-01500")).to_be_visible()
    await expect(page.locator(".tile:visible")).to_have_count(1)
    await expect(page.locator(".group-row:visible")).to_have_count(1)
    await expect(page.locator("#shown-count")).to_have_text(f"Hiển thị 1/{NATIONAL_SITES:,}".replace(",", "."))
    await page.fill("#site-search", "")
    await expect(group(page, "Cụm 16").locator(".group-row")).to_have_attribute("aria-expanded", "false")
    await expect(group(page, "Cụm 34").locator(".group-row")).to_have_attribute("aria-expanded", "true")
    await expect(page.locator(".group-row:visible")).to_have_count(PROVINCES)
    assert hub.hub.state.present_total == total

    await page.click('.lang-switch button[data-lang="en"]')
    await expect(group(page, "Cụm 1").locator(".group-ready")).to_have_text("0/98 ready", timeout=LIVE)
    await expect(group(page, "Cụm 1").locator(".group-present")).to_have_text("5,880/5,880 people")
    await expect(group(page, "Cụm 1").locator(".group-trouble")).to_have_text("Lost: 1")
    await expect(degraded.locator(".incident")).to_have_text("No picture: Camera hội trường không lên hình")
    await expect(group(page, "Cụm 16").locator(".group-row")).to_have_attribute("title", "Show the 98 sites of Cụm 16")


async def test_programme_pace_and_late_agency(start_hub: StartHub, config, pages: Pages) -> None:
    clock = at(config, 7, 42)  # the programme was to open at 07:30; draft answers were due 25 October
    hub = await start_hub(clock=clock)
    mod = await hub.client("moderator")
    await mod.call("question.submit", site="dak-ha", topic="livelihood", origin="pre", agency="sldtbxh",
                   text="Đề nghị xây nhà ở xã hội cho công nhân.", delegate={"name": "Y Điệp", "unit": "Công ty"})
    await mod.call("agenda.advance", item="khai-mac")
    forecast = views.agenda_view(hub.hub.state)["forecast_end"][11:16]  # local time of day, from the hub's own view
    page = await open_chair(pages, hub)
    pace = page.locator("#agenda-pace")
    await expect(pace).to_have_text(f"chậm 12 phút so với kế hoạch · dự kiến kết thúc {forecast}", timeout=LIVE)
    await expect(pace).to_have_attribute("data-pace", "behind")
    late = page.locator('#deadlines .dlp-late li[data-agency="sldtbxh"]')
    await expect(late).to_contain_text("Sở Lao động - Thương binh và Xã hội", timeout=LIVE)
    await expect(late).to_contain_text("chưa có dự thảo trả lời 1 câu")
    await expect(page.locator('#deadlines tr.late[data-agency="sldtbxh"] td').first).to_have_text("0/1")
    await expect(page.locator('#deadlines tr[data-agency="bhxh"]')).to_have_count(0)  # nothing assigned to it
    await page.screenshot(path=str(ARTIFACTS / "chair-pace-and-agencies.png"), full_page=True)
    await page.click('.lang-switch button[data-lang="en"]')
    await expect(pace).to_have_text(f"12 min behind plan · forecast end {forecast}")
    await expect(late).to_contain_text("1 without a draft answer")


async def test_incident_kind_and_note_on_tile_banner_and_console(start_hub: StartHub, config, pages: Pages) -> None:
    clock = at(config, 8, 0)
    hub = await start_hub(clock=clock)
    await make_ready(hub, "dak-glei")
    chair = await open_chair(pages, hub)
    console = await pages.open(hub, "/moderator", hub.token("moderator"))
    await expect(console.locator("#incidents-row")).to_be_hidden(timeout=LIVE)
    tech = await hub.client("technician", site="dak-glei")
    await tech.call("site.incident", site="dak-glei", kind="video", open=True, note="Camera hội trường không lên hình")

    said = "Mất hình: Camera hội trường không lên hình"
    await expect(tile(chair, "dak-glei").locator(".tile-incidents li")).to_have_text(said, timeout=LIVE)
    banner = chair.locator('#trouble li[data-site="dak-glei"]')
    await expect(banner.locator(".status-word")).to_have_text("Có sự cố")
    await expect(banner.locator(".incident")).to_have_text(said)
    row = console.locator('#incidents li[data-site="dak-glei"]')
    await expect(row).to_contain_text("Huyện Đắk Glei", timeout=LIVE)
    await expect(row.locator(".what")).to_have_text(said)
    await expect(row.locator(".since")).to_have_text("từ 08:00")  # the event's time zone

    for page in (chair, console):
        await page.click('.lang-switch button[data-lang="en"]')
    said = "No picture: Camera hội trường không lên hình"
    await expect(tile(chair, "dak-glei").locator(".tile-incidents li")).to_have_text(said, timeout=LIVE)
    await expect(banner.locator(".status-word")).to_have_text("Degraded")
    await expect(banner.locator(".incident")).to_have_text(said)
    await expect(row.locator(".what")).to_have_text(said, timeout=LIVE)
    await expect(row.locator(".since")).to_have_text("since 08:00")
    await expect(console.locator("#incidents-row .label")).to_have_text("Open incidents at sites")

    await tech.call("site.incident", site="dak-glei", kind="video", open=False, note="Đã thay cáp")
    await expect(tile(chair, "dak-glei").locator(".tile-incidents li")).to_have_count(0, timeout=LIVE)
    await expect(console.locator("#incidents-row")).to_be_hidden(timeout=LIVE)


async def test_chart_axis_runs_to_now(start_hub: StartHub, config, pages: Pages) -> None:
    clock = at(config, 8, 0)
    hub = await start_hub(clock=clock)
    admin = await hub.client("admin")
    await admin.call("attendance.set", site="tinh", category="workers", count=100)
    clock.advance(300)
    await admin.call("attendance.set", site="tinh", category="workers", count=250)  # the last change: 08:05
    clock.advance(42 * 60)
    page = await open_chair(pages, hub)  # at 08:47
    end = page.locator('#chart text[class="chart-axis"][text-anchor="end"]')  # the time axis, right end
    await expect(end).to_have_text("08:47", timeout=LIVE)
    people = await page.locator("#chart path.chart-line.people").get_attribute("d")
    right = float(await end.get_attribute("x"))  # where the axis ends, at now
    assert float(people.rsplit("H", 1)[1].split("V")[0]) == right, f"the line stops before now: {people}"

    clock.advance(20 * 60)
    await (await hub.client("moderator")).call("question.submit", site="tinh", topic="other", text="Câu hỏi",
                                               delegate={"name": "Ông B"})  # any frame: the page learns the hub's clock
    await expect(end).to_have_text("09:07", timeout=LIVE)


async def test_waiting_counts_say_what_they_count(start_hub: StartHub, config, pages: Pages) -> None:
    hub = await start_hub(clock=at(config, 9, 0))
    mod = await hub.client("moderator")
    asked = [(await mod.call("question.submit", site="dak-to", topic="training", text=f"Câu hỏi {n}",
                             delegate={"name": "A Hùng"}))["question"] for n in range(3)]
    for qid in asked[:2]:
        await mod.call("question.update", question=qid, status="queued")  # two approved, one awaiting approval
    page = await open_chair(pages, hub)
    kpi = page.locator(".q-counts")
    await expect(page.locator("#q-queued")).to_have_text("2", timeout=LIVE)
    await expect(page.locator("#q-submitted")).to_have_text("1")
    await expect(kpi).to_contain_text("2 chờ trả lời")
    await expect(kpi).to_contain_text("1 chờ duyệt")
    await expect(page.locator("#fit")).to_have_text("2 câu chờ trả lời; chưa đủ dữ liệu để ước tính")
    await expect(page.locator('.topic[data-topic="training"] .count')).to_have_text("2 câu chờ trả lời · 1 chờ duyệt")

    await page.click('.lang-switch button[data-lang="en"]')
    await expect(kpi).to_contain_text("2 queued", timeout=LIVE)
    await expect(kpi).to_contain_text("1 to review")
    await expect(page.locator("#fit")).to_have_text("2 queued; not enough answers yet to estimate")
    await expect(page.locator('.topic[data-topic="training"] .count')).to_have_text("2 queued · 1 to review")


async def test_no_red_on_a_meeting_with_nothing_wrong(start_hub: StartHub, config, pages: Pages) -> None:
    """Red is for trouble: nobody on the floor, a question on air, every site ready are normal states."""
    hub = await start_hub(clock=at(config, 9, 0))
    for site in hub.config.sites:
        await make_ready(hub, site.id)
    mod = await hub.client("moderator")
    await mod.call("event.phase", phase="live")
    qid = (await mod.call("question.submit", site="dak-to", topic="training", text="Đề nghị mở lớp đào tạo nghề.",
                          delegate={"name": "A Hùng"}, agency="sldtbxh"))["question"]
    await mod.call("question.update", question=qid, status="queued")
    chair = await open_chair(pages, hub)
    console = await pages.open(hub, "/moderator", hub.token("moderator"))
    screen = await pages.open(hub, "/projector", hub.token("viewer"))
    await expect(chair.locator("#ready")).to_have_text("11", timeout=LIVE)
    await expect(chair.locator("#floor-now")).to_have_text("Chưa có ai phát biểu")
    await expect(console.locator("#on-air")).to_have_text("Chưa có ai phát biểu", timeout=LIVE)
    await expect(screen.locator("#question")).to_have_text("Chưa có câu hỏi nào đang được trả lời", timeout=LIVE)
    for page in (chair, console, screen):
        assert await red_marks(page) == [], f"red on {page.url} with nobody on the floor"

    await mod.call("question.update", question=qid, status="on_air")
    await expect(chair.locator(f'.topic li[data-question="{qid}"]')).to_have_class("on_air", timeout=LIVE)
    await expect(console.locator(f'article.q[data-question="{qid}"]')).to_have_attribute("data-status", "on_air", timeout=LIVE)
    await expect(screen.locator("#question")).to_have_text("Đề nghị mở lớp đào tạo nghề.", timeout=LIVE)
    for page in (chair, console, screen):
        assert await red_marks(page) == [], f"red on {page.url} with a question on air"


async def test_no_red_before_a_rehearsal_on_another_day(start_hub: StartHub, config, pages: Pages) -> None:
    """Opening the chair early on a day other than the configured one (a rehearsal, a demo) is no trouble."""
    day = config.event.date + dt.timedelta(days=3)
    hub = await start_hub(clock=ManualClock(dt.datetime.combine(day, dt.time(6, 0), config.event.tz).timestamp()))
    page = await open_chair(pages, hub)
    await expect(page.locator("#time-left")).not_to_have_text("–", timeout=LIVE)
    assert await red_marks(page) == []
