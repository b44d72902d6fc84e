"""The post-event report: one fold of the event log into one model that every output form renders.

`build_report(config, events)` streams the log through `State.apply` (the same fold the hub runs)
and keeps beside it only the history the fold forgets: when phases and statuses changed, the highs
of attendance, and the time each site spent down while the event was live. The result is plain
JSON-ready data (times in the event's time zone); the HTML, XLSX and CSV forms are drawn from it,
so their numbers cannot differ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.config import Config
from hub.core import views
from hub.core.model import AGENCY_STATUSES, Question, iso
from hub.core.state import State
from hub.log.base import Event, StoreError
from hub.log.sqlite import SQLiteLog
from hub.questions.deadlines import IN_WRITING

if TYPE_CHECKING:
    from hub.core.hub import Hub

OUTCOMES = ("answered", "deferred", "answered_written", "rejected", "merged", "open")
DOWN = frozenset({"lost", "degraded", "offline"})
REPORTED_AGENCY_STATUSES = (*AGENCY_STATUSES, "unrecorded")  # an agency nobody recorded is counted apart
TIMELINE_POINTS = 240
PROGRESS_EVERY = 2000

Progress = Callable[[int], None]
Period = tuple[float, float | None]


@dataclass
class History:
    """What the report needs that the live state does not keep: when things happened, and the highs."""

    first_ts: float | None = None
    last_ts: float | None = None
    live: list[Period] = field(default_factory=list)
    first_ready: dict[str, float] = field(default_factory=dict)
    down: dict[str, list[Period]] = field(default_factory=dict)
    site_peak_at: dict[str, float] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    category_peak: dict[str, tuple[int, float]] = field(default_factory=dict)
    peak: tuple[int, float | None] = (0, None)

    def observe(self, state: State, event: Event, before: tuple[int, int]) -> None:
        """Note what one event (already folded) changed; `before` is (category count, site peak) before it."""
        self.first_ts = self.first_ts if self.first_ts is not None else event.ts
        self.last_ts = event.ts
        if event.type == "event.phase":
            self._phase(event)
        elif event.type == "site.status":
            self._status(state, event)
        elif event.type.startswith("attendance."):
            self._attendance(state, event, before)

    def _phase(self, event: Event) -> None:
        if self.live and self.live[-1][1] is None and event.data["phase"] != "live":
            self.live[-1] = (self.live[-1][0], event.ts)
        elif event.data["phase"] == "live" and not (self.live and self.live[-1][1] is None):
            self.live.append((event.ts, None))

    def _status(self, state: State, event: Event) -> None:
        site, status = event.site or "", event.data["status"]
        periods = self.down.setdefault(site, [])
        is_down = bool(periods) and periods[-1][1] is None
        if status == "ready":
            self.first_ready.setdefault(site, event.ts)
            if is_down:
                periods[-1] = (periods[-1][0], event.ts)
        elif status in DOWN and state.sites[site].ever_ready and not is_down:
            periods.append((event.ts, None))

    def _attendance(self, state: State, event: Event, before: tuple[int, int]) -> None:
        site, category = state.sites[event.site or ""], event.data["category"]
        if site.peak > before[1]:
            self.site_peak_at[site.id] = event.ts
        total = self.categories.get(category, 0) + site.attendance[category] - before[0]
        self.categories[category] = total
        if total > self.category_peak.get(category, (0, 0.0))[0]:
            self.category_peak[category] = (total, event.ts)
        if state.present_total > self.peak[0]:
            self.peak = (state.present_total, event.ts)


def build_report(config: Config, events: Iterable[Event], progress: Progress | None = None) -> dict[str, Any]:
    """Fold the log once and return the report model every form renders."""
    state, history = State(config), History()
    count, event = 0, None
    try:
        for count, event in enumerate(events, 1):
            before = _before(state, event)
            state.apply(event)
            history.observe(state, event, before)
            if count % PROGRESS_EVERY == 0:
                state.take_changes()
                if progress:
                    progress(count)
    except (KeyError, TypeError) as exc:
        assert event is not None
        raise StoreError(f"event {event.seq} ({event.type}) does not fit this config (unknown {exc}); "
                         "give the config the event ran with") from None
    return Model(config, state, history).build(count)


def _before(state: State, event: Event) -> tuple[int, int]:
    """An attendance event's category count and site peak before it is folded, for the highs."""
    if not event.type.startswith("attendance."):
        return 0, 0
    site = state.sites[event.site or ""]
    return site.attendance.get(event.data["category"], 0), site.peak


def report_from_db(config: Config, db_path: str | Path, until: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The report of a stored event, read straight from its SQLite file (no hub needed)."""
    with closing(open_log(config, db_path)) as log:
        total = log.count()
        return build_report(config, log.read(0, until), progress and (lambda done: progress(done, total)))


async def hub_report(hub: Hub) -> dict[str, Any]:
    """The report of all the running hub has stored durably, folded in a thread so the loop keeps serving."""
    return await asyncio.to_thread(report_from_db, hub.config, hub.db_path, hub.log.durable_seq)


def open_log(config: Config, db_path: str | Path) -> SQLiteLog:
    """The event's log for reading; a missing file is an error, not a new empty event."""
    if not Path(db_path).is_file():
        raise StoreError(f"{db_path}: no database here; give the event's database with --db")
    return SQLiteLog(Path(db_path), config.event.id)


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def overlap(periods: Iterable[Period], windows: Iterable[Period], end: float) -> float:
    """Seconds the periods spend inside the windows; an open end closes at `end`."""
    windows = list(windows)
    total = 0.0
    for start, stop in periods:
        for w_start, w_stop in windows:
            total += max(0.0, min(end if stop is None else stop, end if w_stop is None else w_stop) - max(start, w_start))
    return total


class Model:
    """Turns the folded state and its history into the report's sections, each a list of plain rows."""

    def __init__(self, config: Config, state: State, history: History) -> None:
        self.config, self.state, self.history, self.tz = config, state, history, config.event.tz
        self.plan = state.plan()
        self.as_of = history.last_ts if history.last_ts is not None else config.event.starts_at.timestamp()
        self.live_end = history.live[-1][1] if history.live else None
        self.site_names = {s.id: s.name for s in config.sites}
        self.topic_names = {t.id: t.name for t in config.topics}
        self.agency_names = {a.id: a.name for a in config.agencies}

    def t(self, ts: float | None) -> str | None:
        return iso(ts, self.tz)

    def build(self, count: int) -> dict[str, Any]:
        readiness, downtime = self.readiness()
        sections = {
            "event": self.event(), "attendance": self.attendance(), "agencies": self.agencies(),
            "readiness": readiness, "incidents": self.incidents(), "questions": self.questions(),
            "deferred": self.deferred(), "agenda": self.agenda(), "timeline": self.timeline(),
        }
        sections["written"] = self.written(sections["deferred"])
        h = self.history
        source = {"events": count, "seq": self.state.seq, "first": self.t(h.first_ts), "as_of": self.t(self.as_of)}
        return {"source": source, "totals": self.totals(sections, downtime), **sections}

    def event(self) -> dict[str, Any]:
        live = self.history.live
        return {**views.event_view(self.state), "live_started": self.t(live[0][0]) if live else None,
                "live_ended": self.t(self.live_end)}

    def totals(self, s: dict[str, Any], downtime: float) -> dict[str, Any]:
        present, expected = self.state.present_total, self.config.expected_total
        rows = s["readiness"]
        return {
            "sites": len(rows), "expected": expected, "present": present, "percent": percent(present, expected),
            "peak": self.history.peak[0], "peak_at": self.t(self.history.peak[1]),
            "checked_in": sum(r["checked_in"] is not None for r in rows),
            "ready_by_deadline": sum(r["by_deadline"] for r in rows),
            "ready_by_start": sum(r["lead_minutes"] is not None and r["lead_minutes"] >= 0 for r in rows),
            "never_ready": sum(r["first_ready"] is None for r in rows),
            "incidents": len(s["incidents"]), "downtime_minutes": minutes(downtime),
            "questions": s["questions"]["totals"]["total"], "outcomes": s["questions"]["totals"]["outcomes"],
            "written_received": s["written"]["received"], "written_due": s["written"]["still_due"],
            "agencies": s["agencies"]["counts"],
        }

    def attendance(self) -> dict[str, Any]:
        h, cats = self.history, [c.id for c in self.config.categories]
        sites = [{
            "site": s.id, "name": s.config.name, "kind": s.config.kind, "group": s.config.group,
            "expected": s.config.expected, "present": s.present, "percent": percent(s.present, s.config.expected),
            "peak": s.peak, "peak_at": self.t(h.site_peak_at.get(s.id)),
            "by_category": {c: s.attendance.get(c, 0) for c in cats},
        } for s in self.state.sites.values()]
        by_category = views.totals(self.state)["by_category"]
        categories = [{
            "category": c.id, "name": c.name, "present": by_category.get(c.id, 0),
            "peak": h.category_peak.get(c.id, (0, None))[0], "peak_at": self.t(h.category_peak.get(c.id, (0, None))[1]),
        } for c in self.config.categories]
        return {"sites": sites, "categories": categories}

    def agencies(self) -> dict[str, Any]:
        rows = []
        for agency in self.config.agencies:
            record = self.state.agencies.get(agency.id) or {}
            rows.append({"agency": agency.id, "name": agency.name, "short": agency.short,
                         "status": record.get("status", "unrecorded"), "delegate": record.get("delegate"),
                         "written_report": bool(record.get("written_report")), "at": record.get("at")})
        counts = {status: sum(r["status"] == status for r in rows) for status in REPORTED_AGENCY_STATUSES}
        counts["with_report"] = sum(r["written_report"] for r in rows)
        return {"rows": rows, "counts": counts}

    def readiness(self) -> tuple[list[dict[str, Any]], float]:
        """Per site: check-in, first ready against the run's start, and downtime while live; plus the total downtime."""
        h, start, deadline = self.history, self.plan.start, self.plan.readiness_deadline
        rows, total = [], 0.0
        for s in self.state.sites.values():
            first = h.first_ready.get(s.id)
            down = overlap(h.down.get(s.id, []), h.live, self.as_of)
            total += down
            rows.append({
                "site": s.id, "name": s.config.name, "technician": s.technician, "checked_in": self.t(s.checked_in),
                "first_ready": self.t(first),
                "lead_minutes": None if first is None or start is None else minutes(start - first),
                "by_deadline": first is not None and deadline is not None and first <= deadline,
                "incidents": len(s.incidents),
                "downtime_minutes": minutes(down), "status": s.status,
            })
        return rows, total

    def incidents(self) -> list[dict[str, Any]]:
        rows = []
        for s in self.state.sites.values():
            for i in s.incidents.values():
                end = self.as_of if i.closed is None else i.closed
                rows.append({
                    "site": s.id, "name": s.config.name, "id": i.id, "kind": i.kind, "note": i.note,
                    "opened": self.t(i.opened), "closed": self.t(i.closed), "open": i.closed is None,
                    "minutes": minutes(end - i.opened), "live_minutes": minutes(overlap([(i.opened, i.closed)],
                                                                                      self.history.live, self.as_of)),
                    "_opened": i.opened,
                })
        rows.sort(key=lambda r: r.pop("_opened"))
        return rows

    def question_row(self, q: Question) -> dict[str, Any]:
        written = q.written or {}
        return {
            "id": q.id, "site": q.site, "site_name": self.site_names.get(q.site, q.site), "origin": q.origin,
            "topic": q.topic, "topic_name": self.topic_names.get(q.topic, q.topic),
            "delegate": q.delegate.get("name", ""), "unit": q.delegate.get("unit", ""), "text": q.text,
            "agency": q.agency, "agency_name": self.agency_names.get(q.agency or "", q.agency),
            "status": q.status, "outcome": q.status if q.status in OUTCOMES else "open",
            "submitted": self.t(q.submitted), "spoken_minutes": minutes(q.spoken_seconds), "merged_into": q.merged_into,
            "deferred_at": self.t(q.deferred_at), "due": q.due, "written_at": written.get("at"),
            "reference": written.get("reference"), "answer_date": written.get("date"),
            "co_askers": [{"name": a.get("name", ""), "site": a.get("site"),
                           "site_name": self.site_names.get(a.get("site") or "", a.get("site"))} for a in q.co_askers],
        }

    def questions(self) -> dict[str, Any]:
        rows = [self.question_row(q) for q in self.state.questions.values()]
        topics: dict[str, list[dict[str, Any]]] = {}
        sites: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            topics.setdefault(row["topic"], []).append(row)
            sites.setdefault(row["site"], []).append(row)
        by_topic = [self._outcomes(t.id, t.name, topics.get(t.id, [])) for t in self.config.topics]
        by_site = [self._outcomes(s.id, s.name, sites[s.id]) for s in self.config.sites if s.id in sites]
        return {"by_topic": by_topic, "by_site": by_site, "rows": rows, "totals": self._outcomes(None, None, rows)}

    @staticmethod
    def _outcomes(key: str | None, name: str | None, rows: list[dict[str, Any]]) -> dict[str, Any]:
        outcomes = {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}
        return {"id": key, "name": name, "total": len(rows), "outcomes": outcomes}

    def deferred(self) -> list[dict[str, Any]]:
        """The questions that go out for written answers, one group per answering agency, ready to send."""
        groups: dict[str | None, list[dict[str, Any]]] = {}
        for q in self.state.questions.values():
            if q.status in IN_WRITING:
                groups.setdefault(q.agency, []).append(self.question_row(q))
        order = [a.id for a in self.config.agencies] + sorted(k for k in groups if k not in self.agency_names) + [None]
        out = []
        for agency in dict.fromkeys(order):
            rows = groups.get(agency)
            if not rows:
                continue
            waiting = [r["due"] for r in rows if r["status"] == "deferred" and r["due"]]
            short = next((a.short for a in self.config.agencies if a.id == agency), None)
            out.append({"agency": agency, "name": self.agency_names.get(agency or "", agency), "short": short,
                        "count": len(rows), "received": sum(r["written_at"] is not None for r in rows),
                        "still_due": sum(r["status"] == "deferred" for r in rows),
                        "due": min(waiting) if waiting else None, "questions": rows})
        return out

    @staticmethod
    def written(deferred: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [{k: g[k] for k in ("agency", "name", "count", "received", "still_due", "due")} for g in deferred]
        return {"rows": rows, "total": sum(r["count"] for r in rows), "received": sum(r["received"] for r in rows),
                "still_due": sum(r["still_due"] for r in rows)}

    def agenda(self) -> list[dict[str, Any]]:
        """The programme as the live view plans it; an item still running when the live phase ended closes there."""
        rows = []
        for item in views.agenda_view(self.state)["items"]:
            times = self.state.agenda_times.get(item["id"], {})
            started, ended = times.get("started"), times.get("ended")
            if ended is None and started is not None and self.live_end is not None and self.live_end >= started:
                ended = self.live_end
                item = {**item, "ended": self.t(ended), "actual_minutes": minutes(ended - started)}
            difference = None if started is None or ended is None else round((ended - started) / 60 - item["minutes"], 1)
            rows.append({**item, "difference_minutes": difference})
        return rows

    def timeline(self) -> list[dict[str, Any]]:
        """Attendance and sites ready over time, thinned to at most TIMELINE_POINTS (each kept point is real)."""
        points = self.state.timeline
        step = max(1, -(-len(points) // TIMELINE_POINTS))
        kept = points[step - 1::step]
        if points and (not kept or kept[-1] is not points[-1]):
            kept.append(points[-1])
        return [{"at": self.t(ts), "present": int(present), "sites_ready": int(ready)} for ts, present, ready in kept]
