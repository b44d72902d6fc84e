"""The post-event report: the Kon Tum day replayed over websockets, then every form checked against it.

The day is `tests/kontum_day.py`'s (attendance, the 33 questions, agencies, agenda, one written answer),
driven here with the technicians as well: check-ins and readiness (one hall late), heartbeats, an
incident and a failed check while live, one incident in the rehearsal, and late arrivals who leave
again (so the peak is above the final count). A ManualClock makes every time exact.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import html
import html.parser
import io
import re
import shutil
import subprocess
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import orjson
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner, Result

from hub.cli.main import cli
from hub.config import Config, Heartbeat, load_config
from hub.core.model import iso
from hub.log.sqlite import open_database
from hub.report.formats import PORTRAIT_WIDTH, csv_value, render_csv, render_xlsx, sheet_names
from hub.report.tables import LANGS, TEXT, Table, layout
from hub.web.app import create_app
from sites.client import HubClient

from .browser import Pages
from .conftest import KON_TUM, ROOT, ManualClock, RunningHub, StartHub
from .kontum_day import AGENCY_ATTENDANCE, MERGES, Day, Expected, expected, send_written_answer, split_attendance
from .test_documents import to_pdf

LATE_SITE = "kon-plong"  # reports its video link only after the start
INCIDENT_SITE, FAILED_CHECK_SITE, REHEARSAL_SITE = "dak-to", "sa-thay", "ngoc-hoi"
LATE_ARRIVALS = ("tp-kon-tum", "guests", 25)
CHECKS = ("camera", "audio", "display", "network", "video_link")


@dataclass
class Facts:
    """What the technicians and the moderator did, and when (clock seconds)."""

    checked_in: dict[str, float] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    live_down: dict[str, float] = field(default_factory=dict)
    incidents: list[tuple[str, str, float, float]] = field(default_factory=list)  # site, kind, opened, closed
    phases: list[tuple[str, float]] = field(default_factory=list)
    agenda: list[tuple[str, float]] = field(default_factory=list)
    peak: tuple[int, float] = (0, 0.0)


class ReportDay:
    """The Kon Tum day with its technicians, on a ManualClock, in the order the hall ran it."""

    def __init__(self, running: RunningHub, clock: ManualClock) -> None:
        self.running, self.clock, self.config = running, clock, running.config
        self.day = Day(running, clock)
        self.start = self.config.event.starts_at.timestamp()
        self.facts = Facts()
        self.techs: dict[str, HubClient] = {}

    def moment(self, minutes: float) -> float:
        """Move the clock forward to `minutes` after the planned start (negative: before)."""
        target = self.start + minutes * 60
        assert target >= self.clock.now
        self.clock.now = target
        return target

    async def beat(self) -> None:
        for site, tech in self.techs.items():
            await tech.call("site.heartbeat", site=site, rtt_ms=40)

    async def phase(self, phase: str) -> None:
        await self.day.moderator.call("event.phase", phase=phase)
        self.facts.phases.append((phase, self.clock.now))

    async def agenda(self, item: str) -> None:
        await self.day.moderator.call("agenda.advance", item=item)
        self.facts.agenda.append((item, self.clock.now))

    async def checks(self, site: str, items: tuple[str, ...], ok: bool = True) -> None:
        for item in items:
            await self.techs[site].call("site.check", site=site, item=item, ok=ok)

    async def check_in(self) -> None:
        for index, site in enumerate(self.config.sites):
            self.techs[site.id] = tech = await self.running.client("technician", site=site.id)
            self.facts.checked_in[site.id] = self.moment(-85 + 4 * index)
            await tech.call("site.checkin", site=site.id, technician=f"Kỹ thuật viên {index + 1}")
            self.moment(-83 + 4 * index)
            await self.checks(site.id, CHECKS[:-1] if site.id == LATE_SITE else CHECKS)
            if site.id != LATE_SITE:
                self.facts.ready[site.id] = self.clock.now

    async def incident(self, site: str, kind: str, minutes_open: float) -> tuple[float, float]:
        opened = self.clock.now
        await self.techs[site].call("site.incident", site=site, kind=kind, open=True, note="Mất tín hiệu")
        self.clock.advance(minutes_open * 60)
        await self.techs[site].call("site.incident", site=site, kind=kind, open=False, note="Đã khắc phục")
        self.facts.incidents.append((site, kind, opened, self.clock.now))
        return opened, self.clock.now

    async def arrivals(self, delta: int) -> None:
        site, category, _ = LATE_ARRIVALS
        await self.day.registrars[site].call("attendance.add", site=site, category=category, delta=delta)

    async def run(self) -> Expected:
        day = self.day
        self.clock.now = self.start - 90 * 60
        await day.connect()
        mod = day.moderator
        await self.phase("rehearsal")
        await self.check_in()
        floor = day.floor_rows()
        self.moment(-40)
        for row in day.rows:
            if row.line not in floor:
                await day.submit(row, from_floor=False)
        self.moment(-35)
        await self.incident(REHEARSAL_SITE, "audio", 5)
        await self.beat()
        self.moment(0)
        await self.beat()
        await self.phase("live")
        await self.agenda("khai-mac")
        attendance = split_attendance(self.config)
        await asyncio.gather(*(day.count(site, counts) for site, counts in attendance.items()))
        for row in day.rows:
            if row.line in floor:
                await day.submit(row, from_floor=True)
        agencies = {a.id: AGENCY_ATTENDANCE.get(a.id, ("head", False)) for a in self.config.agencies}
        for agency, (status, report) in agencies.items():
            await mod.call("agency.attendance", agency=agency, status=status, written_report=report,
                           **({"delegate": "Phó Giám đốc"} if status == "deputy" else {}))
        self.moment(8)
        await self.checks(LATE_SITE, ("video_link",))
        self.facts.ready[LATE_SITE] = self.clock.now
        self.moment(10)
        await self.beat()
        await self.agenda("bao-cao")
        await self.arrivals(LATE_ARRIVALS[2])
        self.facts.peak = (sum(sum(c.values()) for c in attendance.values()) + LATE_ARRIVALS[2], self.clock.now)
        merged = {day.ids[a]: day.ids[b] for a, b in MERGES.items()}
        for row in day.rows:
            qid = day.ids[row.line]
            await day.update(qid, **({"merged_into": merged[qid]} if qid in merged else {"status": "queued"}))
        self.moment(30)
        await self.beat()
        agenda_done = ["khai-mac", "bao-cao"]
        for item in self.config.agenda:
            if item.topic is None:
                continue
            await self.agenda(item.id)
            agenda_done.append(item.id)
            await self.topic(item.topic)
            await self.beat()
        await self.arrivals(-LATE_ARRIVALS[2])
        for item in ("ket-luan", "be-mac"):
            await self.agenda(item)
            agenda_done.append(item)
            self.clock.advance(10 * 60)
            await self.beat()
        await self.phase("closed")
        written = await send_written_answer(day)
        await self.settle()
        return expected(day, attendance, merged, written, {a: s for a, (s, _) in agencies.items()}, agenda_done)

    async def topic(self, topic: str) -> None:
        """Run one dialogue block; during two of them a hall goes down for a while."""
        if topic == "training":
            opened = self.clock.now
            await self.techs[INCIDENT_SITE].call("site.incident", site=INCIDENT_SITE, kind="video", open=True,
                                                 note="Mất hình ảnh")
            await self.day.run_topic(topic)
            await self.techs[INCIDENT_SITE].call("site.incident", site=INCIDENT_SITE, kind="video", open=False)
            self.facts.incidents.append((INCIDENT_SITE, "video", opened, self.clock.now))
            self.facts.live_down[INCIDENT_SITE] = self.clock.now - opened
        elif topic == "livelihood":
            failed = self.clock.now
            await self.checks(FAILED_CHECK_SITE, ("camera",), ok=False)
            await self.day.run_topic(topic)
            await self.checks(FAILED_CHECK_SITE, ("camera",))
            self.facts.live_down[FAILED_CHECK_SITE] = self.clock.now - failed
        elif any(r.topic == topic for r in self.day.rows):
            await self.day.run_topic(topic)

    async def settle(self) -> None:
        """Ten days on every hall's heartbeat is stale: wait until the hub has recorded them all lost."""
        hub = self.running.hub
        for _ in range(200):
            if not hub.state.status_drift(self.clock()) and hub.log.durable_seq == hub.state.seq:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("site statuses did not settle")


def long_heartbeat(config: Config) -> Config:
    """Kon Tum with a long heartbeat timeout, so halls stay fresh between the replay's clock steps."""
    return config.model_copy(update={"heartbeat": Heartbeat(interval_seconds=60, timeout_seconds=3600)})


@pytest.fixture
def day_config(config: Config) -> Config:
    return long_heartbeat(config)


async def replayed(start_hub: StartHub, day_config: Config, clock: ManualClock) -> tuple[RunningHub, Expected, Facts]:
    running = await start_hub(cfg=day_config, clock=clock)
    replay = ReportDay(running, clock)
    exp = await replay.run()
    return running, exp, replay.facts


async def fetch(running: RunningHub, path: str, role: str = "chair") -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{running.url}{path}", headers={"Authorization": f"Bearer {running.token(role)}"})
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response


# -- checks against the day ----------------------------------------------------------------------

def counting_peak(counts: dict[str, int]) -> int:
    """A hall's highest count while its registrar counted (Day.count: +10s, +1, -1, then the recount)."""
    present = peak = 0
    for final in counts.values():
        before = present
        for step in [10] * min(3, final // 10) + [1]:
            present += step
            peak = max(peak, present)
        present = before + final
    return max(peak, present)


def check_model(m: dict[str, Any], exp: Expected, facts: Facts, config: Config) -> None:
    """Every figure of the report model against what the replay did."""
    tz, start = config.event.tz, config.event.starts_at.timestamp()
    t = m["totals"]
    assert (t["present"], t["expected"], t["sites"]) == (exp.total, config.expected_total, len(config.sites))
    assert (t["peak"], t["peak_at"]) == (facts.peak[0], iso(facts.peak[1], tz))
    sites = {s["site"]: s for s in m["attendance"]["sites"]}
    assert {s: v["by_category"] for s, v in sites.items()} == exp.attendance
    assert {s: v["present"] for s, v in sites.items()} == exp.present
    late_site, late_category, extra = LATE_ARRIVALS
    assert {s: v["peak"] for s, v in sites.items()} == {
        s: max(counting_peak(c), exp.present[s] + (extra if s == late_site else 0)) for s, c in exp.attendance.items()}
    categories = {c["category"]: c for c in m["attendance"]["categories"]}
    assert {c: v["present"] for c, v in categories.items()} == exp.by_category
    assert categories[late_category]["peak"] == exp.by_category[late_category] + extra

    assert [(p["phase"], p["at"]) for p in m["event"]["phase_history"]] == [(p, iso(ts, tz)) for p, ts in facts.phases]
    live = dict(facts.phases)
    assert (m["event"]["live_started"], m["event"]["live_ended"]) == (iso(live["live"], tz), iso(live["closed"], tz))

    readiness = {r["site"]: r for r in m["readiness"]}
    deadline = start - config.event.readiness_deadline_minutes * 60
    for site, ready in facts.ready.items():
        row = readiness[site]
        assert row["checked_in"] == iso(facts.checked_in[site], tz)
        assert row["first_ready"] == iso(ready, tz)
        assert row["lead_minutes"] == round((start - ready) / 60, 1)
        assert row["by_deadline"] == (ready <= deadline)
        assert row["downtime_minutes"] == round(facts.live_down.get(site, 0.0) / 60, 1)
        assert row["status"] == "lost"  # ten days after the close, no hall sends heartbeats
    assert readiness[LATE_SITE]["lead_minutes"] < 0 < readiness[INCIDENT_SITE]["lead_minutes"]
    assert t["ready_by_start"] == len(config.sites) - 1 and t["never_ready"] == 0
    assert t["downtime_minutes"] == round(sum(facts.live_down.values()) / 60, 1) > 0

    incidents = [(i["site"], i["kind"], i["opened"], i["closed"], i["minutes"], i["live_minutes"]) for i in m["incidents"]]
    assert incidents == [(s, k, iso(o, tz), iso(c, tz), round((c - o) / 60, 1),
                          round((c - o) / 60, 1) if o >= live["live"] else 0.0) for s, k, o, c in facts.incidents]

    q = m["questions"]
    assert q["totals"]["total"] == len(exp.statuses) == 33
    assert {r["id"]: r["status"] for r in q["rows"]} == exp.statuses
    for topic in q["by_topic"]:
        assert {o: n for o, n in topic["outcomes"].items() if n} == exp.by_topic_status.get(topic["id"], {})
        assert topic["total"] == exp.by_topic.get(topic["id"], 0)
    site_of = {r["id"]: r["site"] for r in q["rows"]}
    for group in q["by_site"]:
        assert group["total"] == sum(site_of[qid] == group["id"] for qid in exp.statuses)
    deferred = {g["agency"]: g for g in m["deferred"]}
    for agency, qids in exp.deferred_by_agency.items():
        still = [r["id"] for r in deferred[agency]["questions"] if r["status"] == "deferred"]
        assert still == qids and deferred[agency]["still_due"] == len(qids)
        assert {r["due"] for r in deferred[agency]["questions"]} == {exp.due}
    for qid, answer in exp.written.items():
        row = next(r for g in m["deferred"] for r in g["questions"] if r["id"] == qid)
        assert (row["status"], row["reference"], row["answer_date"]) == ("answered_written", answer["reference"],
                                                                         answer["date"])
    assert (t["written_received"], t["written_due"]) == (len(exp.written), sum(map(len, exp.deferred_by_agency.values())))

    agencies = {a["agency"]: a for a in m["agencies"]["rows"]}
    assert {a: v["status"] for a, v in agencies.items()} == exp.agencies
    assert [a for a, v in agencies.items() if v["written_report"]] == [a for a, (s, r) in AGENCY_ATTENDANCE.items() if r]

    started = {item: iso(ts, tz) for item, ts in facts.agenda}
    agenda = {a["id"]: a for a in m["agenda"]}
    assert [a for a in agenda if agenda[a]["started"]] == exp.agenda_done
    ends = [ts for _, ts in facts.agenda[1:]] + [live["closed"]]
    for (item, began), ended in zip(facts.agenda, ends, strict=True):
        assert agenda[item]["started"] == started[item]
        assert agenda[item]["actual_minutes"] == round((ended - began) / 60, 1)
        assert agenda[item]["difference_minutes"] == round((ended - began) / 60 - agenda[item]["minutes"], 1)
    assert m["timeline"][-1]["present"] == exp.total


# -- the other forms, read back ------------------------------------------------------------------

def check_xlsx(data: bytes, model: dict[str, Any], exp: Expected) -> None:
    """The workbook read back with openpyxl holds the tables of the JSON model, cell by cell, with types."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    tables = layout(model, "vi")
    assert book.sheetnames == sheet_names(tables)
    assert all(len(name) <= 31 for name in book.sheetnames) and len(set(book.sheetnames)) == len(book.sheetnames)
    for table, name in zip(tables, book.sheetnames, strict=True):
        sheet = book[name]
        assert sheet.freeze_panes == "A3" and sheet["A1"].value == table.title
        assert [c.value for c in sheet[2]][:len(table.columns)] == [c.label for c in table.columns]
        rows = [list(r)[:len(table.columns)] for r in sheet.iter_rows(min_row=3, max_row=2 + len(table.rows),
                                                                      values_only=True)]
        assert rows == [[naive(v) for v in row] for row in table.rows], name
    attendance = book["Điểm danh"]
    assert attendance.column_dimensions["B"].width > 20
    totals = [r for r in attendance.iter_rows(min_row=3, values_only=True) if r[1] == "Tổng cộng"][0]
    assert totals[4] == exp.total and isinstance(totals[4], int)
    ready = book["Sẵn sàng"]
    assert isinstance(ready.cell(row=3, column=4).value, dt.datetime)
    assert len(book.sheetnames) == len([t for t in tables if t.key != "deferred"]) + len(model["deferred"])


def naive(value: Any) -> Any:
    """A cell as openpyxl reads it back: local times, dates as midnight, empty text as empty."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    return None if value == "" else value


def csv_sections(data: bytes) -> dict[str, list[list[str]]]:
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    sections, current = {}, None
    for row in rows[1:]:
        if not row:
            current = None
        elif current is None:
            current = sections.setdefault(row[0], [])
        else:
            current.append(row)
    return sections


def check_csv(data: bytes, model: dict[str, Any], exp: Expected) -> None:
    sections = csv_sections(data)
    tables = layout(model, "vi")
    assert list(sections) == [t.title for t in tables]
    for table in tables:
        body = sections[table.title][1 if table.note else 0:]
        assert body[0] == [c.label for c in table.columns]
        assert body[1:] == [[str(csv_value(v)) for v in row] for row in table.rows], table.title
    attendance = {r[0]: r for r in sections["Điểm danh theo điểm cầu"][1:]}
    assert {s: int(attendance[s][4]) for s in exp.present} == exp.present


class TableText(html.parser.HTMLParser):
    """The printed page's section titles and table cells, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[tuple[str, list[list[str]]]] = []
        self.capture: list[str] | None = None
        self.row: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("h2", "td", "th"):
            self.capture = []
        elif tag == "tr":
            self.row = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self.capture is not None:
            self.sections.append(("".join(self.capture).strip(), []))
        elif tag in ("td", "th") and self.capture is not None:
            self.row.append("".join(self.capture).strip())
        elif tag == "tr" and self.sections:
            self.sections[-1][1].append(self.row)
        if tag in ("h2", "td", "th"):
            self.capture = None

    def handle_data(self, data: str) -> None:
        if self.capture is not None:
            self.capture.append(data)


def thousands(n: int, sep: str = ".") -> str:
    return f"{n:,}".replace(",", sep)


def check_html(page: str, model: dict[str, Any], exp: Expected, tables: list[Table]) -> None:
    parser = TableText()
    parser.feed(page)
    printed = dict(parser.sections)
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<svg" in page and "<polyline" in page
    for table in tables:
        if table.key != "timeline":
            assert len(printed[table.title]) == len(table.rows) + 1, table.title
    attendance = {r[0]: r for r in printed["Điểm danh theo điểm cầu"][1:]}
    assert {s: attendance[s][4] for s in exp.present} == {s: thousands(n) for s, n in exp.present.items()}
    assert printed["Điểm danh theo điểm cầu"][-1][4] == thousands(exp.total) == "2.300"
    by_topic = {r[0]: r for r in printed["Câu hỏi theo nhóm vấn đề"][1:]}
    for topic in model["questions"]["by_topic"]:
        assert by_topic[topic["name"]][1] == str(exp.by_topic.get(topic["id"], 0))
    for group in model["deferred"]:
        assert len(printed[f"Câu hỏi chuyển {group['name']} trả lời bằng văn bản"]) == group["count"] + 1
    readiness = {r[0]: r for r in printed["Sẵn sàng kỹ thuật theo điểm cầu"][1:]}
    for row in model["readiness"]:
        assert readiness[row["site"]][4] == dt.datetime.fromisoformat(row["first_ready"]).strftime("%H:%M")
        assert readiness[row["site"]][8] == f"{row['downtime_minutes']:.1f}".replace(".", ",")


# -- the tests -----------------------------------------------------------------------------------

async def test_every_form_carries_the_days_numbers(start_hub: StartHub, day_config: Config, clock: ManualClock,
                                                    tmp_path: Path) -> None:
    running, exp, facts = await replayed(start_hub, day_config, clock)
    model = (await fetch(running, "/api/report")).json()
    check_model(model, exp, facts, day_config)
    assert model["source"]["seq"] == running.hub.state.seq

    check_xlsx((await fetch(running, "/report.xlsx", "moderator")).content, model, exp)
    csv_response = await fetch(running, "/report.csv", "admin")
    assert csv_response.headers["Content-Disposition"].endswith('report.csv"')
    check_csv(csv_response.content, model, exp)
    page = (await fetch(running, "/report")).text
    check_html(page, model, exp, layout(model, "vi"))
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "report-kontum.html").write_text(page, encoding="utf-8")

    english = (await fetch(running, "/report?lang=en")).text
    assert '<html lang="en">' in english and "Attendance per connection point" in english
    assert f"<td class=\"int\">{thousands(exp.total, ',')}</td>" in english

    await running.server.close()  # the command line reads the same file with no hub running
    for form in ("json", "xlsx", "csv", "html"):
        out = tmp_path / f"report.{form}"
        done = run_cli("--config", str(KON_TUM), "--db", str(running.db_path), "--format", form, "--out", str(out))
        assert f"written to {out}" in done.stderr
        if form == "json":
            assert orjson.loads(out.read_bytes()) == model
    assert (tmp_path / "report.csv").read_bytes() == csv_response.content
    stdout = run_cli("--config", str(KON_TUM), "--db", str(running.db_path), "--format", "json").stdout
    assert orjson.loads(stdout) == model


def run_cli(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["report", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result


async def test_report_routes_need_a_report_role(start_hub: StartHub) -> None:
    running = await start_hub()
    async with httpx.AsyncClient() as http:
        for path in ("/report", "/report.xlsx", "/report.csv", "/api/report"):
            assert (await http.get(f"{running.url}{path}")).status_code == 401
            wrong = await http.get(f"{running.url}{path}", headers={"Authorization": "Bearer nope.nope"})
            assert wrong.status_code == 401
            for role, site in (("viewer", None), ("registrar", "dak-ha"), ("technician", "dak-ha")):
                headers = {"Authorization": f"Bearer {running.token(role, site=site)}"}
                assert (await http.get(f"{running.url}{path}", headers=headers)).status_code == 403
        shell = await http.get(f"{running.url}/report")
        assert shell.headers["WWW-Authenticate"] == "Bearer" and "/assets/report.js" in shell.text
        navigation = await http.get(f"{running.url}/report", headers={"Sec-Fetch-Mode": "navigate"})
        assert navigation.status_code == 200 and "/assets/report.js" in navigation.text
        assert "<table" not in navigation.text
        bad = await http.get(f"{running.url}/api/report?lang=fr",
                             headers={"Authorization": f"Bearer {running.token('chair')}"})
        assert bad.status_code == 400 and "lang" in bad.json()["error"]


def test_cli_refuses_a_missing_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--config", str(KON_TUM), "--db", str(tmp_path / "none.db"),
                                      "--format", "json"])
    assert result.exit_code == 1 and "no database" in result.stderr and not (tmp_path / "none.db").exists()
    result = CliRunner().invoke(cli, ["report", "--config", str(KON_TUM), "--format", "xlsx"])
    assert result.exit_code == 1 and "--out" in result.stderr


def test_cli_refuses_a_log_from_another_config(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "event.db", "kontum-2023")
    conn.execute("INSERT INTO events(seq, ts, type, site, data) VALUES (1, 0, 'site.checkin', 'xa-moi', '{}')")
    conn.close()
    result = CliRunner().invoke(cli, ["report", "--config", str(KON_TUM), "--db", str(tmp_path / "event.db"),
                                      "--format", "json"])
    assert result.exit_code == 1 and "event 1 (site.checkin) does not fit this config" in result.stderr


async def test_printed_page_from_the_fragment_token(start_hub: StartHub, day_config: Config, clock: ManualClock,
                                                    pages: Pages) -> None:
    running, exp, _ = await replayed(start_hub, day_config, clock)
    page = await pages.open(running, "/report", running.token("chair"))
    await page.wait_for_selector("html[data-report=ready]", timeout=15000)
    assert "token" not in page.url
    assert await page.locator("h1").inner_text() == "Báo cáo kết quả Hội nghị"
    assert "2.300" in await page.locator("table").nth(2).inner_text()
    async with page.expect_download() as download:
        await page.click("[data-download$='.xlsx']")
    saved = await download.value
    assert saved.suggested_filename == "kontum-2023-report.xlsx"
    assert openpyxl.load_workbook(io.BytesIO(Path(await saved.path()).read_bytes())).sheetnames[0] == "Tổng quan"
    await page.emulate_media(media="print")
    pdf = await page.pdf(prefer_css_page_size=True, print_background=True)
    count = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))
    print(f"report PDF: {count} pages, {len(pdf):,} bytes")
    assert 1 < count < 40
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "report-kontum.pdf").write_bytes(pdf)


# -- the workbook on paper, and the words the forms print -----------------------------------------

@dataclass
class PrintedDay:
    """The Kon Tum day replayed once for the module: its log, its report, its workbooks and their printed pages."""

    db_path: Path
    model: dict[str, Any]
    books: dict[str, bytes]  # language -> the workbook as the hub serves it
    pages: dict[str, list[str]]  # language -> the text of each page LibreOffice prints from it


async def replay_and_fetch(config: Config, db_path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The report day on a real hub, then the report and both workbooks over HTTP; the hub is stopped after."""
    clock = ManualClock()
    server = TestServer(create_app(config, db_path, clock), host="127.0.0.1")
    await server.start_server()
    running = RunningHub(server, config, db_path)
    try:
        await ReportDay(running, clock).run()
        model = (await fetch(running, "/api/report")).json()
        return model, {lang: (await fetch(running, f"/report.xlsx?lang={lang}")).content for lang in LANGS}
    finally:
        await running.close_clients()
        await server.close()


def pdf_pages(pdf: Path) -> list[str]:
    """The text of each page, as laid out (poppler's pdftotext ends every page with a form feed)."""
    done = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, timeout=60)
    return done.stdout.decode("utf-8").split("\f")[:-1]


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> PrintedDay:
    """One replay and one LibreOffice run for every paper test of the module (each costs seconds)."""
    folder = tmp_path_factory.mktemp("printed")
    db_path = folder / "event.db"
    model, books = asyncio.run(replay_and_fetch(long_heartbeat(load_config(KON_TUM)), db_path))
    files = [folder / f"report-{lang}.xlsx" for lang in books]
    for file, data in zip(files, books.values(), strict=True):
        file.write_bytes(data)
    to_pdf(files, folder / "pdf", folder / "lo-profile")
    pages = {lang: pdf_pages(folder / "pdf" / f"report-{lang}.pdf") for lang in books}
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    shutil.copy(folder / "pdf" / "report-vi.pdf", ROOT / "test-artifacts" / "report-kontum-xlsx.pdf")
    return PrintedDay(db_path, model, books, pages)


FOOTERS = {"vi": "Trang &P/&N", "en": "Page &P of &N"}


def test_every_sheet_has_a_print_setup(printed: PrintedDay) -> None:
    """A4, fit to the paper's width, title and column headers on each page, the event above, the page below."""
    title = printed.model["event"]["title"]
    for lang, data in printed.books.items():
        book = openpyxl.load_workbook(io.BytesIO(data))
        tables = layout(printed.model, lang)
        for table, name in zip(tables, book.sheetnames, strict=True):
            sheet, setup = book[name], book[name].page_setup
            wide = sum(c.width for c in table.columns) > PORTRAIT_WIDTH
            assert (setup.paperSize, setup.orientation) == (9, "landscape" if wide else "portrait"), name
            assert sheet.sheet_properties.pageSetUpPr.fitToPage, name
            assert (setup.fitToWidth, setup.fitToHeight) == (1, 0), name
            assert sheet.print_title_rows == "$1:$2", name
            assert sheet.oddHeader.center.text == title, name
            assert (sheet.oddFooter.left.text, sheet.oddFooter.right.text) == ("&A", FOOTERS[lang]), name
        orientations = {(t.key, book[n].page_setup.orientation) for t, n in zip(tables, book.sheetnames, strict=True)}
        assert ("deferred", "landscape") in orientations and ("deferred", "portrait") not in orientations
        assert ("summary", "portrait") in orientations


def test_a_long_title_with_ampersands_still_makes_a_header_excel_opens(printed: PrintedDay) -> None:
    model = orjson.loads(orjson.dumps(printed.model))
    model["event"]["title"] = ("Sở GD&ĐT, Sở KH&ĐT " * 20)[:300]  # the longest title a config takes
    with zipfile.ZipFile(io.BytesIO(render_xlsx(model))) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    header = html.unescape(re.search(r"<oddHeader>(.*?)</oddHeader>", sheet)[1])
    assert len(header) <= 255 and header.startswith("&C") and header.endswith("…")
    assert "&" not in header[2:].replace("&&", ""), "every ampersand of the title is doubled, none starts a code"


def test_the_workbook_prints_on_few_pages_and_each_agency_list_on_one(printed: PrintedDay) -> None:
    """Rendered by LibreOffice: a page or two per sheet, every agency's list on one page of its own."""
    title = printed.model["event"]["title"]
    deferred = printed.model["deferred"]
    assert any(g["count"] == 1 for g in deferred), "the day has a one-question agency list"
    for lang, pages in printed.pages.items():
        tables = layout(printed.model, lang)
        print(f"\nworkbook ({lang}) printed by LibreOffice: {len(pages)} pages for {len(tables)} sheets")
        assert len(tables) <= len(pages) <= len(tables) + 3
        footer = TEXT[lang]["page_of"]
        for number, page in enumerate(pages, 1):
            assert title[:40] in page and footer.format(page=number, pages=len(pages)) in page, number
        for table, group in zip([t for t in tables if t.key == "deferred"], deferred, strict=True):
            on = [n for n, page in enumerate(pages, 1) if table.title in page]
            assert len(on) == 1, (table.title, on)
            assert all(q["text"][:30] in " ".join(pages[on[0] - 1].split()) for q in group["questions"]), table.title


KINDS = {"vi": {"central": "Trung tâm", "city": "Thành phố", "district": "Huyện"},
         "en": {"central": "Central", "city": "City", "district": "District"}}


def test_site_kinds_in_the_readers_language(printed: PrintedDay, config: Config, tmp_path: Path) -> None:
    """The "Loại" column says Trung tâm, Thành phố, Huyện (Central, City, District in English) in every form."""
    kinds = {s.id: s.kind for s in config.sites}
    assert set(kinds.values()) == set(KINDS["vi"])
    for lang, words in KINDS.items():
        want = {site: words[kind] for site, kind in kinds.items()}
        title, sheet = TEXT[lang]["attendance"], TEXT[lang]["sheet_attendance"]
        book = openpyxl.load_workbook(io.BytesIO(printed.books[lang]))
        rows = book[sheet].iter_rows(min_row=3, max_row=2 + len(kinds), max_col=3, values_only=True)
        assert {r[0]: r[2] for r in rows} == want, "xlsx"
        out = tmp_path / f"report-{lang}"
        run_cli("--config", str(KON_TUM), "--db", str(printed.db_path), "--format", "csv", "--lang", lang,
                "--out", str(out.with_suffix(".csv")))
        assert {r[0]: r[2] for r in csv_sections(out.with_suffix(".csv").read_bytes())[title][1:-1]} == want, "csv"
        run_cli("--config", str(KON_TUM), "--db", str(printed.db_path), "--format", "html", "--lang", lang,
                "--out", str(out.with_suffix(".html")))
        parser = TableText()
        parser.feed(out.with_suffix(".html").read_text(encoding="utf-8"))
        assert {r[0]: r[2] for r in dict(parser.sections)[title][1:-1]} == want, "html"
        done = run_cli("--config", str(KON_TUM), "--db", str(printed.db_path), "--format", "json", "--lang", lang)
        assert {s["site"]: s["kind"] for s in orjson.loads(done.stdout)["attendance"]["sites"]} == kinds, "json"


@pytest.mark.parametrize("lang", LANGS)
def test_a_kind_without_a_label_is_shown_as_the_config_gives_it(printed: PrintedDay, lang: str) -> None:
    model = orjson.loads(orjson.dumps(printed.model))
    model["attendance"]["sites"][1]["kind"] = "làng nghề"
    attendance = next(t for t in layout(model, lang) if t.key == "attendance")
    assert [r[2] for r in attendance.rows[:3]] == [KINDS[lang]["central"], "làng nghề", KINDS[lang]["district"]]


# -- a big event -------------------------------------------------------------------------------

def big_config(path: Path, sites: int) -> Config:
    """Kon Tum's lists with `sites` halls: the central one and communes in 30 groups."""
    text = re.sub(r"\[\[sites\]\].*?(?=\n\[\[categories\]\])", "", KON_TUM.read_text(encoding="utf-8"), flags=re.S)
    halls = ['[[sites]]\nid = "tinh"\nname = "Điểm cầu tỉnh"\nkind = "central"\nexpected = 300\n']
    halls += [f'[[sites]]\nid = "xa-{n:04d}"\nname = "Xã {n:04d}"\nkind = "commune"\nexpected = 40\n'
              f'group = "Cụm {n % 30}"\n' for n in range(1, sites)]
    path.write_text(text + "\n" + "\n".join(halls), encoding="utf-8")
    return load_config(path)


def big_log(config: Config, path: Path, target: int) -> dict[str, int]:
    """About `target` events of a whole day straight into the log; returns the figures they must give."""
    rows: list[tuple] = []
    ts = config.event.starts_at.timestamp() - 3600

    def add(type_: str, data: dict, site: str | None = None, later: float = 0.0) -> int:
        at = ts + len(rows) * 0.1 + later
        rows.append((len(rows) + 1, at, type_, "load", site, None, orjson.dumps(data).decode()))
        return len(rows)

    sites = [s.id for s in config.sites]
    categories = [c.id for c in config.categories]
    agencies = [a.id for a in config.agencies]
    for site in sites:
        add("site.checkin", {"technician": "KTV"}, site)
        add("site.status", {"status": "checking", "previous": "offline"}, site)
        for item in config.required_checks:
            add("site.check", {"item": item, "ok": True}, site)
        add("site.status", {"status": "ready", "previous": "checking"}, site)
    add("event.phase", {"phase": "live"})
    present = 0
    for n, site in enumerate(sites):
        for c, category in enumerate(categories):
            add("attendance.set", {"category": category, "count": 5 + (n + c) % 7}, site)
            present += 5 + (n + c) % 7
        qid = f"q{add('question.submit', {'topic': 'policy', 'text': 'Câu hỏi', 'delegate': {'name': 'A'}}, site)}"
        if n % 3 == 0:
            add("question.update", {"question": qid, "status": "deferred", "agency": agencies[n % len(agencies)]}, site)
        if n % 10 == 0:
            add("site.status", {"status": "lost", "previous": "ready"}, site)
            add("site.status", {"status": "ready", "previous": "lost"}, site, later=120)
    beats = 0
    while len(rows) < target - 1:
        add("site.heartbeat", {"rtt_ms": 30 + beats % 50}, sites[beats % len(sites)])
        beats += 1
    add("event.phase", {"phase": "closed"})
    conn = open_database(path, config.event.id)
    with conn:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events(seq, ts, type, actor, site, op_id, data) VALUES (?,?,?,?,?,?,?)", rows)
    conn.close()
    return {"events": len(rows), "present": present, "deferred": len(range(0, len(sites), 3)),
            "questions": len(sites), "downs": len(range(0, len(sites), 10))}


def test_big_event_report(tmp_path: Path) -> None:
    config = big_config(tmp_path / "big.toml", 3000)
    made = big_log(config, tmp_path / "big.db", 100_000)
    started = time.perf_counter()
    done = run_cli("--config", str(tmp_path / "big.toml"), "--db", str(tmp_path / "big.db"), "--format", "json",
                   "--out", str(tmp_path / "big.json"))
    seconds = time.perf_counter() - started
    model = orjson.loads((tmp_path / "big.json").read_bytes())
    print(f"\nbig event: {made['events']:,} events, {len(config.sites):,} sites -> JSON report in {seconds:.1f} s; "
          f"{done.stderr.strip().splitlines()[-1]}")
    assert "reading 100,000 events: 100%" in done.stderr.replace("\r", "\n")
    t = model["totals"]
    assert (model["source"]["events"], t["sites"], t["present"]) == (made["events"], 3000, made["present"])
    assert (t["questions"], t["written_due"], t["ready_by_start"]) == (made["questions"], made["deferred"], 3000)
    assert sum(r["downtime_minutes"] > 0 for r in model["readiness"]) == made["downs"]
    attendance = csv_sections(render_csv(model))["Điểm danh theo điểm cầu"]
    assert len(attendance) == 1 + 3000 + 1 and int(attendance[-1][4]) == made["present"]
