"""The whole Kon Tum 2023 day, replayed at speed over real websockets, with the figures it must leave behind.

`await replay(running_hub)` drives a hub started by the `start_hub` fixture exactly as the day ran:
11 registrars count 2,300 people, 22 pre-compiled questions come from the moderator and 11 from the
floor, the moderator queues them, merges one duplicate, puts two per topic on air and answers them
live, defers the rest to their agencies; agencies' attendance is recorded, the phase moves from
rehearsal to closed, and one agency sends its written answer afterwards. It returns `Expected`, the
numbers computed from what the replay did (never read back from the hub), for tests and reports.

With `clock` (the `ManualClock` the hub was started with) the day runs on its real date, from 07:00
local time, and speaking times and due dates are exact.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.config import Config
from sites.client import HubClient

from .conftest import ManualClock, RunningHub

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS_CSV = ROOT / "config" / "kon-tum-2023-questions.csv"
# How each hall's people split over the attendance categories (the rest are guests and press).
CATEGORY_SHARES = {"workers": 0.52, "public-employees": 0.25, "union-officers": 0.1, "employers": 0.08}
LIVE_PER_TOPIC = 2
MERGES = {33: 22}  # CSV line -> CSV line it duplicates (both from Đắk Glei: a dialogue every year)
AGENCY_ATTENDANCE = {"skhdt": ("deputy", True), "ban-qlkkt": ("absent", False)}  # everyone else: the head came
WRITTEN = {"agency": "bhxh", "reference": "2456/BHXH-TT", "date": "2023-12-05"}


@dataclass
class Row:
    """One line of the questions CSV: `line` is its line number in the file (the header is line 1)."""

    line: int
    topic: str
    site: str
    delegate: str
    unit: str
    text: str
    agency: str
    answer_note: str


@dataclass
class Expected:
    """What the hub must hold after the replay, number by number."""

    attendance: dict[str, dict[str, int]]  # site -> category -> count
    present: dict[str, int]  # site -> people present
    total: int
    by_category: dict[str, int]
    question_ids: dict[int, str]  # CSV line -> question id
    statuses: dict[str, str]  # question id -> final status
    by_status: dict[str, int]
    by_topic: dict[str, int]  # every submitted question, merged ones included
    by_topic_status: dict[str, dict[str, int]]
    by_origin: dict[str, int]
    answered_live: list[str]  # question ids, in the order they went on air
    deferred_by_agency: dict[str, list[str]]  # still waiting for a written answer
    merged: dict[str, str]  # merged question -> the question it went into
    written: dict[str, dict[str, str]]  # question id -> reference and date
    answer_notes: dict[str, str]  # question id -> the prepared answer note imported with it
    agencies: dict[str, str]  # agency -> head, deputy or absent
    phase: str
    agenda_done: list[str]
    speaking_seconds: dict[str, float] | None = None  # per question, with a clock
    speaking_by_site: dict[str, dict[str, float]] | None = None  # site -> turns, seconds, with a clock
    due: str | None = None  # the written-answer due date of deferred questions, with a clock
    tokens: dict[str, str] = field(default_factory=dict)  # role or "registrar:<site>" -> token id (the actor)


def load_rows(path: Path = QUESTIONS_CSV) -> list[Row]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return [Row(line=i, **r) for i, r in enumerate(csv.DictReader(f), start=2)]


def split_attendance(config: Config) -> dict[str, dict[str, int]]:
    """Each site's expected people over the categories; the last category takes the remainder, so sums are exact."""
    out: dict[str, dict[str, int]] = {}
    categories = [c.id for c in config.categories]
    for site in config.sites:
        counts = {c: int(site.expected * CATEGORY_SHARES.get(c, 0)) for c in categories[:-1]}
        counts[categories[-1]] = site.expected - sum(counts.values())
        out[site.id] = counts
    return out


class Day:
    """The replay's running bookkeeping, and the clients it acts through."""

    def __init__(self, running: RunningHub, clock: ManualClock | None) -> None:
        self.running, self.config, self.clock = running, running.config, clock
        self.rows = load_rows()
        self.ids: dict[int, str] = {}
        self.statuses: dict[str, str] = {}
        self.spoken: dict[str, float] = {}
        self.live: list[str] = []
        self.moderator: HubClient
        self.registrars: dict[str, HubClient] = {}

    def tick(self, seconds: float) -> None:
        if self.clock is not None:
            self.clock.advance(seconds)

    async def connect(self) -> None:
        self.moderator = await self.running.client("moderator")
        for site in self.config.sites:
            self.registrars[site.id] = await self.running.client("registrar", site=site.id)

    def floor_rows(self) -> set[int]:
        """The last question of each site comes from the floor on the day; the others were compiled before."""
        last: dict[str, int] = {}
        for row in self.rows:
            last[row.site] = row.line
        return set(last.values())

    async def submit(self, row: Row, from_floor: bool) -> None:
        fields: dict[str, Any] = {"site": row.site, "topic": row.topic, "text": row.text, "agency": row.agency,
                                  "delegate": {"name": row.delegate, "unit": row.unit}}
        if from_floor:
            result = await self.registrars[row.site].call("question.submit", wants_to_speak=True, **fields)
        else:
            if row.answer_note:
                fields["answer_note"] = row.answer_note
            result = await self.moderator.call("question.submit", origin="pre", **fields)
        self.ids[row.line] = result["question"]
        self.statuses[result["question"]] = "submitted"

    async def count(self, site: str, counts: dict[str, int]) -> None:
        """A registrar's counting: a few +10s as groups arrive, +1s, one correction, then the recount."""
        client = self.registrars[site]
        for category, final in counts.items():
            for _ in range(min(3, final // 10)):
                await client.call("attendance.add", site=site, category=category, delta=10)
            await client.call("attendance.add", site=site, category=category, delta=1)
            await client.call("attendance.add", site=site, category=category, delta=-1)
            result = await client.call("attendance.set", site=site, category=category, count=final)
            assert result["count"] == final, result

    async def update(self, qid: str, **fields: Any) -> None:
        result = await self.moderator.call("question.update", question=qid, **fields)
        self.statuses[qid] = result["status"]

    async def answer_live(self, qid: str, site: str) -> None:
        await self.moderator.call("floor.call", site=site, question=qid)
        seconds = 90.0 + 15 * len(self.live)
        self.live.append(qid)
        self.tick(seconds)
        await self.update(qid, status="answered")
        self.spoken[qid] = seconds
        self.tick(20)

    async def run_topic(self, topic: str) -> None:
        """Put the topic's first questions on air (delegates who asked to speak first), defer the rest."""
        rows = [r for r in self.rows if r.topic == topic and self.statuses[self.ids[r.line]] == "queued"]
        floor = self.floor_rows()
        rows.sort(key=lambda r: (r.line not in floor, r.line))
        for row in rows[:LIVE_PER_TOPIC]:
            await self.answer_live(self.ids[row.line], row.site)
        for row in rows[LIVE_PER_TOPIC:]:
            await self.update(self.ids[row.line], status="deferred")


async def replay(running: RunningHub, clock: ManualClock | None = None) -> Expected:
    """Run the Kon Tum day against a started hub and return the figures it must end with."""
    day = Day(running, clock)
    config = running.config
    if clock is not None:
        clock.now = config.event.starts_at.timestamp() - 30 * 60
    await day.connect()
    mod = day.moderator
    await mod.call("event.phase", phase="rehearsal")
    floor = day.floor_rows()
    for row in day.rows:
        if row.line not in floor:
            await day.submit(row, from_floor=False)
    day.tick(20 * 60)
    await mod.call("event.phase", phase="live")
    await mod.call("agenda.advance", item="khai-mac")
    attendance = split_attendance(config)
    await asyncio.gather(*(day.count(site, counts) for site, counts in attendance.items()))
    for row in day.rows:
        if row.line in floor:
            await day.submit(row, from_floor=True)
    agencies = {a.id: AGENCY_ATTENDANCE.get(a.id, ("head", False)) for a in config.agencies}
    for agency, (status, report) in agencies.items():
        await mod.call("agency.attendance", agency=agency, status=status, written_report=report,
                       **({"delegate": "Phó Giám đốc"} if status == "deputy" else {}))
    day.tick(10 * 60)
    await mod.call("agenda.advance", item="bao-cao")
    merged = {day.ids[a]: day.ids[b] for a, b in MERGES.items()}
    for row in day.rows:
        qid = day.ids[row.line]
        if qid in merged:
            await day.update(qid, merged_into=merged[qid])
        else:
            await day.update(qid, status="queued")
    day.tick(20 * 60)
    agenda_done = ["khai-mac", "bao-cao"]
    for item in config.agenda:
        if item.topic is not None:
            await mod.call("agenda.advance", item=item.id)
            agenda_done.append(item.id)
            if any(r.topic == item.topic for r in day.rows):
                await day.run_topic(item.topic)
    for item in ("ket-luan", "be-mac"):
        await mod.call("agenda.advance", item=item)
        agenda_done.append(item)
        day.tick(10 * 60)
    await mod.call("event.phase", phase="closed")
    written = await send_written_answer(day)
    return expected(day, attendance, merged, written, {a: s for a, (s, _) in agencies.items()}, agenda_done)


async def send_written_answer(day: Day) -> dict[str, dict[str, str]]:
    """After the day, one agency answers its first deferred question in writing."""
    agency = WRITTEN["agency"]
    qid = next(day.ids[r.line] for r in day.rows if r.agency == agency and day.statuses[day.ids[r.line]] == "deferred")
    client = await day.running.client("agency", agency=agency)
    day.tick(10 * 24 * 3600)
    result = await client.call("question.answer", question=qid, kind="written", text="Bảo hiểm xã hội tỉnh trả lời...",
                               reference=WRITTEN["reference"], date=WRITTEN["date"])
    day.statuses[qid] = result["status"]
    return {qid: {"reference": WRITTEN["reference"], "date": WRITTEN["date"]}}


def expected(day: Day, attendance: dict[str, dict[str, int]], merged: dict[str, str],
             written: dict[str, dict[str, str]], agencies: dict[str, str], agenda_done: list[str]) -> Expected:
    by_category: Counter[str] = Counter()
    for counts in attendance.values():
        by_category.update(counts)
    topic_of = {day.ids[r.line]: r.topic for r in day.rows}
    agency_of = {day.ids[r.line]: r.agency for r in day.rows}
    site_of = {day.ids[r.line]: r.site for r in day.rows}
    by_topic_status: dict[str, dict[str, int]] = {}
    for qid, status in day.statuses.items():
        topic = by_topic_status.setdefault(topic_of[qid], {})
        topic[status] = topic.get(status, 0) + 1
    deferred: dict[str, list[str]] = {}
    for qid, status in day.statuses.items():
        if status == "deferred":
            deferred.setdefault(agency_of[qid], []).append(qid)
    floor = day.floor_rows()
    timed = day.clock is not None
    by_site: dict[str, dict[str, float]] = {}
    for qid, seconds in day.spoken.items():
        site = by_site.setdefault(site_of[qid], {"turns": 0, "seconds": 0.0})
        site["turns"] += 1
        site["seconds"] += seconds
    due = None
    if timed:
        due = (day.config.event.date + dt.timedelta(days=day.config.deadlines.written_answer_days)).isoformat()
    return Expected(
        attendance=attendance, present={s: sum(c.values()) for s, c in attendance.items()},
        total=sum(by_category.values()), by_category=dict(by_category), question_ids=dict(day.ids),
        statuses=dict(day.statuses), by_status=dict(Counter(day.statuses.values())),
        by_topic=dict(Counter(topic_of.values())), by_topic_status=by_topic_status,
        by_origin={"pre": len(day.rows) - len(floor), "floor": len(floor)}, answered_live=list(day.live),
        deferred_by_agency=deferred, merged=merged, written=written, agencies=agencies, phase="closed",
        answer_notes={day.ids[r.line]: r.answer_note for r in day.rows if r.answer_note and r.line not in floor},
        agenda_done=agenda_done, speaking_seconds=dict(day.spoken) if timed else None,
        speaking_by_site=by_site if timed else None, due=due,
        tokens={"moderator": day.moderator.token.split(".")[0],
                **{f"registrar:{s}": c.token.split(".")[0] for s, c in day.registrars.items()}})
