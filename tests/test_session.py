"""The run's plan (hub/core/schedule.py): the configured times on the day; on another day (a rehearsal, a demo) the same
plan from when the run goes live, alike in the live view, the chair page, the report, the documents and the deadlines.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import docx
import orjson
import pytest
from playwright.async_api import expect

from hub.config import Config
from hub.core import views
from hub.documents.official import vn_date

from .browser import Pages
from .conftest import ManualClock, StartHub
from .test_around_the_day import deadlines, row
from .test_dashboard import LIVE, make_ready, open_chair
from .test_documents import download, texts


def local(config: Config, day: dt.date, hour: int, minute: int) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), config.event.tz).timestamp()


async def test_on_the_day_the_planned_times_hold(start_hub: StartHub, config: Config) -> None:
    clock = ManualClock(local(config, config.event.date, 7, 41))
    hub = await start_hub(clock=clock)
    moderator = await hub.client("moderator")
    await moderator.call("event.phase", phase="live")
    event = views.event_view(hub.hub.state)
    assert event["session_starts_at"] == "2023-11-24T07:30:00+07:00"
    assert event["session_ends_at"] == "2023-11-24T11:30:00+07:00"
    assert event["readiness_deadline"] == "2023-11-24T07:00:00+07:00"


async def test_on_another_day_the_session_runs_from_going_live(start_hub: StartHub, config: Config) -> None:
    clock = ManualClock(local(config, dt.date(2026, 11, 22), 14, 5))
    hub = await start_hub(clock=clock)
    moderator = await hub.client("moderator")
    assert views.event_view(hub.hub.state)["session_ends_at"] == "2023-11-24T11:30:00+07:00"  # not live yet: the plan
    await moderator.call("event.phase", phase="live")
    event = views.event_view(hub.hub.state)
    assert event["session_starts_at"] == "2026-11-22T14:05:00+07:00"
    assert event["session_ends_at"] == "2026-11-22T18:05:00+07:00"
    clock.advance(3600)
    await moderator.call("event.phase", phase="rehearsal")
    await moderator.call("event.phase", phase="live")
    assert views.event_view(hub.hub.state)["session_starts_at"] == "2026-11-22T14:05:00+07:00"  # the first time it went live


ANOTHER_DAY = dt.date(2026, 12, 1)  # a rehearsal or demo long after the configured 24 November 2023


def forecast(config: Config, clock: ManualClock) -> str:
    """The programme's end, local clock time, when the first item starts now and every item takes its minutes."""
    return f"{dt.datetime.fromtimestamp(clock.now + sum(i.minutes for i in config.agenda) * 60, config.event.tz):%H:%M}"


async def test_a_run_on_another_day_plans_from_going_live(start_hub: StartHub, config: Config) -> None:
    clock = ManualClock(local(config, ANOTHER_DAY, 13, 30))
    hub = await start_hub(clock=clock)
    moderator = await hub.client("moderator")
    await moderator.call("event.phase", phase="rehearsal")
    clock.now = local(config, ANOTHER_DAY, 13, 40)
    await make_ready(hub, "dak-ha")  # 40 minutes before the opening: before the readiness deadline
    clock.now = local(config, ANOTHER_DAY, 14, 10)
    await make_ready(hub, "sa-thay")  # 10 minutes before: after the deadline, before the opening
    event = views.event_view(hub.hub.state)
    assert (event["session_starts_at"], event["readiness_deadline"]) == (None, None)  # the plan waits for going live
    assert event["session_date"] == "2026-12-01"
    assert views.agenda_view(hub.hub.state)["items"][0]["planned_start"] is None  # not live yet: no plan to be late on

    clock.now = local(config, ANOTHER_DAY, 14, 20)
    await moderator.call("event.phase", phase="live")
    clock.now = local(config, ANOTHER_DAY, 14, 23)
    await moderator.call("agenda.advance", item="khai-mac")
    clock.now = local(config, ANOTHER_DAY, 14, 38)
    await moderator.call("agenda.advance", item="bao-cao")  # the opening took 15 minutes instead of 10
    event, agenda = views.event_view(hub.hub.state), views.agenda_view(hub.hub.state)
    assert (event["session_starts_at"], event["session_ends_at"], event["readiness_deadline"]) == (
        "2026-12-01T14:20:00+07:00", "2026-12-01T18:20:00+07:00", "2026-12-01T13:50:00+07:00")
    assert [(i["planned_start"], i["late_seconds"]) for i in agenda["items"][:2]] == [
        ("2026-12-01T14:20:00+07:00", 180), ("2026-12-01T14:30:00+07:00", 480)]
    assert agenda["behind_seconds"] == 480
    clock.now = local(config, ANOTHER_DAY, 18, 30)
    await moderator.call("event.phase", phase="closed")

    report = orjson.loads(await download(hub, "/api/report", role="chair"))
    readiness = {r["site"]: r for r in report["readiness"]}
    assert (readiness["dak-ha"]["lead_minutes"], readiness["dak-ha"]["by_deadline"]) == (40.0, True)
    assert (readiness["sa-thay"]["lead_minutes"], readiness["sa-thay"]["by_deadline"]) == (10.0, False)
    assert (report["totals"]["ready_by_start"], report["totals"]["ready_by_deadline"]) == (2, 1)
    assert report["event"]["session_starts_at"] == "2026-12-01T14:20:00+07:00"
    assert report["agenda"][1]["late_seconds"] == 480
    page = (await download(hub, "/report.csv", role="chair")).decode("utf-8-sig")
    assert "Huyện Đắk Hà" in page and re.search(r"Huyện Đắk Hà,[^\n]*,40\.0,Có,", page)


@pytest.mark.parametrize("held", [dt.date(2023, 11, 24), ANOTHER_DAY], ids=["configured day", "another day"])
async def test_a_question_deferred_after_the_day_is_due_alike_everywhere(start_hub: StartHub, config: Config,
                                                                         held: dt.date) -> None:
    clock = ManualClock(local(config, held, 7, 0))
    hub = await start_hub(clock=clock)
    moderator = await hub.client("moderator")
    await moderator.call("event.phase", phase="rehearsal")
    clock.now = local(config, held, 7, 30)
    await moderator.call("event.phase", phase="live")
    asked = await moderator.call("question.submit", site="dak-ha", topic="livelihood", agency="sldtbxh",
                                 text="Đề nghị xây nhà ở xã hội cho công nhân khu công nghiệp Hòa Bình.",
                                 delegate={"name": "Y Điệp", "unit": "Công ty Cao su Kon Tum"})
    clock.now = local(config, held, 11, 30)
    await moderator.call("event.phase", phase="closed")
    clock.now = local(config, held + dt.timedelta(days=3), 9, 0)  # the secretariat clears the queue three days on
    await moderator.call("question.update", question=asked["question"], status="deferred")
    due = held + dt.timedelta(days=3 + config.deadlines.written_answer_days)

    status, plan = await deadlines(hub, hub.token("chair"))
    assert status == 200 and plan["event_date"] == held.isoformat()
    written = next(d for d in plan["deadlines"] if d["id"] == "written_answers")
    assert row(plan, "sldtbxh")["due"] == plan["written_due"] == written["date"] == due.isoformat()
    letter = docx.Document(io.BytesIO(await download(hub, "/api/documents/cong-van-sldtbxh.docx")))
    body = texts(letter)
    assert [r.cells[5].text for r in letter.tables[1].rows[1:]] == [f"{due:%d/%m/%Y}"]
    assert any(f"trước {vn_date(due)} để tổng hợp" in p for p in body)
    assert any(p.startswith(f"{vn_date(held).capitalize()}, Ủy ban nhân dân tỉnh Kon Tum đã tổ chức") for p in body)
    summary = texts(docx.Document(io.BytesIO(await download(hub, "/api/documents/bao-cao-ket-qua.docx"))))
    assert any(p.startswith(f"{vn_date(held).capitalize()}, Ủy ban nhân dân tỉnh Kon Tum tổ chức") for p in summary)


async def test_the_chair_sees_a_run_on_another_day_in_minutes(start_hub: StartHub, config: Config,
                                                             pages: Pages) -> None:
    clock = ManualClock(local(config, ANOTHER_DAY, 21, 0))
    hub = await start_hub(clock=clock)
    moderator = await hub.client("moderator")
    await moderator.call("event.phase", phase="rehearsal")
    page = await open_chair(pages, hub)
    await expect(page.locator("#time-label")).to_have_text("Dự kiến bắt đầu", timeout=LIVE)
    await expect(page.locator("#time-left")).to_have_text("khi khai mạc")
    await expect(page.locator("#fit")).to_have_text(
        "Khác ngày kế hoạch (24/11/2023): lịch trình tính từ lúc chuyển sang “Đang diễn ra”")
    clock.now = local(config, ANOTHER_DAY, 21, 5)
    await moderator.call("event.phase", phase="live")
    clock.now = local(config, ANOTHER_DAY, 21, 9)
    await moderator.call("agenda.advance", item="khai-mac")
    pace = page.locator("#agenda-pace")
    await expect(pace).to_have_text(f"chậm 4 phút so với kế hoạch · dự kiến kết thúc {forecast(config, clock)}",
                                    timeout=LIVE)
    await expect(page.locator("#time-label")).to_have_text("Thời gian còn lại")
    await expect(page.locator("#time-left")).to_have_text(re.compile(r"^3:5\d:\d\d$"))  # of 4 hours from 21:05
    await page.click('.lang-switch button[data-lang="en"]')
    await expect(pace).to_have_text(f"4 min behind plan · forecast end {forecast(config, clock)}")
    clock.now = local(config, ANOTHER_DAY + dt.timedelta(days=1), 8, 0)
    await moderator.call("event.phase", phase="live")  # a new day opens a new run: its programme starts afresh
    await expect(pace).to_have_text("", timeout=LIVE)
    await moderator.call("agenda.advance", item="khai-mac")
    await expect(pace).to_have_text(f"on plan · forecast end {forecast(config, clock)}", timeout=LIVE)
