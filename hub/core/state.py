"""The live state: a fold of the event log, and the one place where site status is derived.

`State.apply(event)` is the only way state changes, both live and when rebuilding from the log on
start; it returns the result a command's answer carries, so a retried `op_id` gets the same answer.
What each audience sees of it is built in `hub.core.views`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hub.config import Config
from hub.core import daylog
from hub.core.events import EVENTS, event
from hub.core.model import Incident, Question, SiteState, iso
from hub.core.schedule import Plan, Run, follow_run, today
from hub.log.base import Event

TIMELINE_STEP_SECONDS = 10.0
TIMELINE_VIEW_POINTS = 360  # what a view holds of the timeline: an hour at one point a step
RECENT_OPS = 20_000  # answers kept in memory for retries; far more than any client has in flight

# Moderator moves between question statuses; `answered_written` comes only from `question.answer`.
TRANSITIONS: dict[str, frozenset[str]] = {
    "submitted": frozenset({"queued", "on_air", "answered", "deferred", "rejected"}),
    "queued": frozenset({"submitted", "on_air", "answered", "deferred", "rejected"}),
    "on_air": frozenset({"queued", "answered", "deferred"}),
    "answered": frozenset({"queued", "deferred"}),
    "deferred": frozenset({"queued", "on_air", "answered"}),
    "rejected": frozenset({"submitted", "queued"}),
    "answered_written": frozenset(),
    "merged": frozenset(),
}
OPEN_QUESTION = frozenset({"submitted", "queued", "on_air"})


def derive_status(site: SiteState, now: float, timeout: float, required: Iterable[str]) -> str:
    """Site status exactly as the contract defines it, from the folded facts and the clock."""
    if site.checked_in is None:
        return "offline"
    fresh = site.last_seen is not None and now - site.last_seen <= timeout
    video_contradicted = site.video in ("absent", "no_video") and site.checks.get("video_link") is True
    healthy = (all(site.checks.get(item) is True for item in required)
               and not video_contradicted and not site.open_incidents())
    if not site.ever_ready:
        return ("ready" if healthy else "checking") if fresh else "offline"
    if not fresh:
        return "lost"
    return "ready" if healthy else "degraded"


@dataclass(slots=True)
class Changes:
    """What changed since the last push: ids to re-send, whether the shared parts moved, the raw events."""

    sites: set[str] = field(default_factory=set)
    questions: set[str] = field(default_factory=set)
    misc: bool = False
    events: list[Event] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sites or self.questions or self.misc or self.events)


class State:
    """Everything the hub knows, folded from events; views are built from it on demand."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.tz = config.event.tz
        self.seq = 0
        self.phase = "setup"
        self.phase_history: list[dict[str, Any]] = []
        self.run: Run = (None, None)  # when this run opened and first went live (hub/core/schedule.py)
        self.sites = {s.id: SiteState(config=s) for s in config.sites}
        self.questions: dict[str, Question] = {}
        self.floor: dict[str, Any] | None = None
        self.agencies: dict[str, dict[str, Any]] = {}
        self.agenda_current: str | None = None
        self.agenda_times: dict[str, dict[str, float | None]] = {}
        # The latest RECENT_OPS answers by op_id (older ones are in the log). Ordered so the oldest goes in
        # O(1): `del d[next(iter(d))]` on a plain dict scans the holes its earlier deletions left.
        self.ops: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.present_total = 0
        self.sites_ready = 0
        # Kept as events fold, for the totals every pushed frame carries: counted over every site, they cost a
        # national meeting's node 7 % of its CPU (3,500 sites, a frame every 50 ms).
        self.sites_by_status: dict[str, int] = {"offline": len(self.sites)} if self.sites else {}
        self.present_by_category: dict[str, int] = {c.id: 0 for c in config.categories}
        self.timeline: list[list[float]] = []
        self.changes = Changes()
        self.version = 0  # bumped by every change a push carries: folded events, and heartbeats not stored
        self.heartbeat_push_seconds = max(config.heartbeat.interval_seconds, len(config.sites) / 100)

    # -- folding ---------------------------------------------------------------------------

    def apply(self, event: Event) -> dict[str, Any]:
        """Fold one event in; return the command result (always with its seq)."""
        self.seq = event.seq
        result = EVENTS[event.type].fold(self, event)
        result["seq"] = event.seq
        if event.op_id is not None:
            self.ops[event.op_id] = result
            if len(self.ops) > RECENT_OPS:
                self.ops.popitem(last=False)  # memory stays flat all day; the log answers older retries
        self.changes.events.append(event)
        self.version += 1
        return result

    def take_changes(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        return changes

    def change_everything(self) -> None:
        """Mark every site, question and shared part changed, so the next push carries the whole state."""
        self.changes = Changes(sites=set(self.sites), questions=set(self.questions), misc=True)

    def _site(self, event: Event) -> SiteState:
        site = self.sites[event.site]  # type: ignore[index]
        site.updated_seq = event.seq
        self.changes.sites.add(event.site)  # type: ignore[arg-type]
        return site

    def _question(self, qid: str, event: Event) -> Question:
        question = self.questions[qid]
        question.updated_seq = event.seq
        self.changes.questions.add(qid)
        return question

    def _misc(self) -> None:
        self.changes.misc = True

    @event("site.checkin", moves_status=True, line=daylog.checkin_line)
    def _checkin(self, e: Event) -> dict[str, Any]:
        site = self._site(e)
        site.technician, site.phone = e.data["technician"], e.data.get("phone")
        site.checked_in = site.checked_in or e.ts
        site.last_seen = e.ts
        return {"site": site.id, "checked_in": iso(site.checked_in, self.tz)}

    @event("site.check", moves_status=True)
    def _check(self, e: Event) -> dict[str, Any]:
        site = self._site(e)
        site.checks[e.data["item"]] = e.data["ok"]
        if e.data.get("note"):
            site.check_notes[e.data["item"]] = e.data["note"]
        site.last_seen = e.ts
        return {"site": site.id, "item": e.data["item"], "ok": e.data["ok"]}

    @event("site.heartbeat", moves_status=True)
    def _heartbeat_event(self, e: Event) -> dict[str, Any]:
        site = self._site(e)
        site.last_stored_heartbeat = e.ts
        return self.heartbeat(site, e.ts, e.data)

    def heartbeat(self, site: SiteState, ts: float, measurements: dict[str, Any]) -> dict[str, Any]:
        """A heartbeat's effect, stored or not: the site is seen now, its link judged by round-trip time."""
        site.last_seen = site.last_heartbeat = ts
        site.measurements = measurements
        link = self.link_for(measurements)
        changed = link != site.link
        site.link = link
        # Push heartbeat times often enough to show, but never more than ~100 sites a second in all.
        if changed or site.pushed_heartbeat is None or ts - site.pushed_heartbeat >= self.heartbeat_push_seconds:
            site.pushed_heartbeat = ts
            self.changes.sites.add(site.id)
            self.version += 1
        return {"site": site.id, "link": link, "link_changed": changed}

    def link_for(self, measurements: dict[str, Any]) -> str | None:
        """A link is `poor` when its round-trip time is over the configured threshold."""
        rtt = measurements.get("rtt_ms")
        return None if rtt is None else ("poor" if rtt > self.config.heartbeat.rtt_poor_ms else "good")

    @event("site.incident", moves_status=True, line=daylog.incident_line)
    def _incident(self, e: Event) -> dict[str, Any]:
        site = self._site(e)
        site.last_seen = e.ts
        if e.data["open"]:
            incident = Incident(id=f"i{e.seq}", kind=e.data["kind"], note=e.data.get("note", ""), opened=e.ts)
            site.incidents[incident.id] = incident
        else:
            incident = site.incidents[e.data["incident"]]
            incident.closed, incident.close_note = e.ts, e.data.get("note")
        return {"site": site.id, "incident": incident.id, "open": incident.closed is None}

    @event("site.status", line=daylog.status_line)
    def _status(self, e: Event) -> dict[str, Any]:
        site = self._site(e)
        before = site.status
        site.status, site.status_since = e.data["status"], e.ts
        site.ever_ready = site.ever_ready or site.status == "ready"
        self.sites_ready += (site.status == "ready") - (before == "ready")
        counts = self.sites_by_status
        counts[before] -= 1
        if not counts[before]:
            del counts[before]
        counts[site.status] = counts.get(site.status, 0) + 1
        self._mark_timeline(e.ts)
        return {"site": site.id, "status": site.status}

    @event("site.presence", moves_status=True)
    def _presence(self, e: Event) -> dict[str, Any]:
        site = self._site(e)
        site.video = e.data["video"]
        return {"site": site.id, "video": site.video}

    @event("attendance.set", "attendance.add")
    def _attendance(self, e: Event) -> dict[str, Any]:
        site, data = self._site(e), e.data
        category = data["category"]
        before = site.attendance.get(category, 0)
        count = data["count"] if e.type == "attendance.set" else max(0, before + data["delta"])
        site.attendance[category] = count
        present = site.present
        self.present_total += count - before
        self.present_by_category[category] = self.present_by_category.get(category, 0) + count - before
        site.peak = max(site.peak, present)
        self._mark_timeline(e.ts)
        self._misc()
        result: dict[str, Any] = {"site": e.site, "category": category, "count": count, "present": present}
        capacity = site.config.capacity
        if capacity is not None and present > capacity:
            result["warning"] = f"over capacity: {present} present, {capacity} seats"
        return result

    def _mark_timeline(self, ts: float) -> None:
        point = [ts, float(self.present_total), float(self.sites_ready)]
        if len(self.timeline) > 1 and ts - self.timeline[-2][0] < TIMELINE_STEP_SECONDS:
            self.timeline[-1] = point  # points stay at least a step apart; the last one is always current
        else:
            self.timeline.append(point)

    @event("question.submit")
    def _submit(self, e: Event) -> dict[str, Any]:
        qid = f"q{e.seq}"
        d = e.data
        self.questions[qid] = Question(
            id=qid, seq=e.seq, site=e.site or "", origin=d.get("origin", "floor"), topic=d["topic"], text=d["text"],
            delegate=d["delegate"], wants_to_speak=d.get("wants_to_speak", False), submitted=e.ts,
            agency=d.get("agency"), position=float(e.seq), actor=e.actor, updated_seq=e.seq,
            answer_note=d.get("answer_note"))
        self.changes.questions.add(qid)
        self._misc()
        return {"question": qid, "status": "submitted"}

    @event("question.update")
    def _update(self, e: Event) -> dict[str, Any]:
        d = e.data
        q = self._question(d["question"], e)
        for key in ("agency", "position", "answer_note", "reason"):
            if key in d:
                setattr(q, key, d[key])
        if d.get("merged_into"):
            self._merge(q, self._question(d["merged_into"], e), e.ts)
        elif "status" in d and d["status"] != q.status:
            self._move(q, d["status"], e.ts)
        self._misc()
        return {"question": q.id, "status": q.status}

    def _move(self, q: Question, status: str, ts: float) -> None:
        """Change a question's status, keeping the floor and speaking time in step."""
        if q.status == "on_air":
            self._end_air(q, ts)
        q.status = status
        if status == "on_air":
            for other in self.questions.values():
                if other.status == "on_air" and other is not q:
                    self._end_air(other, ts)
                    other.status = "queued"
                    self.changes.questions.add(other.id)
            q.on_air_at = ts
            self.floor = {"site": q.site, "question": q.id, "since": ts}
        if status == "deferred":
            q.deferred_at = ts
            q.due = self.plan().due(today(self.tz, ts)).isoformat()

    def _end_air(self, q: Question, ts: float) -> None:
        if q.on_air_at is not None:
            q.spoken_seconds += max(0.0, ts - q.on_air_at)
        q.ended_at = ts
        if self.floor and self.floor.get("question") == q.id:
            self.floor = None

    def _merge(self, q: Question, into: Question, ts: float) -> None:
        if q.status == "on_air":
            self._end_air(q, ts)
        q.status, q.merged_into = "merged", into.id
        asker = {"question": q.id, "site": q.site, **q.delegate}
        into.co_askers.extend([asker, *q.co_askers])

    @event("question.answer")
    def _answer(self, e: Event) -> dict[str, Any]:
        d = e.data
        q = self._question(d["question"], e)
        record = {"text": d["text"], "reference": d.get("reference"), "date": d.get("date"), "at": iso(e.ts, self.tz),
                  "by": e.actor}
        if d["kind"] == "draft":
            q.draft = record
        else:
            if q.status == "on_air":
                self._end_air(q, e.ts)
            q.written, q.status = record, "answered_written"
        self._misc()
        return {"question": q.id, "status": q.status}

    @event("floor.call", line=daylog.floor_line)
    def _floor_call(self, e: Event) -> dict[str, Any]:
        qid = e.data.get("question")
        if qid is not None and self.questions[qid].status != "on_air":
            self._move(self._question(qid, e), "on_air", e.ts)
        self.floor = {"site": e.site, "question": qid, "since": e.ts}
        self._misc()
        return {"site": e.site, "question": qid}

    @event("agency.attendance")
    def _agency_attendance(self, e: Event) -> dict[str, Any]:
        d = e.data
        self.agencies[d["agency"]] = {"status": d["status"], "delegate": d.get("delegate"),
                                      "written_report": d.get("written_report", False), "at": iso(e.ts, self.tz)}
        self._misc()
        return {"agency": d["agency"], "status": d["status"]}

    @event("event.phase", line=daylog.phase_line)
    def _phase(self, e: Event) -> dict[str, Any]:
        self.phase = e.data["phase"]
        self.phase_history.append({"phase": self.phase, "at": iso(e.ts, self.tz)})
        run = follow_run(self.run, self.phase, e.ts, self.tz)
        if self.run[0] is not None and run[0] != self.run[0]:  # a run ends: the next plays its programme afresh
            self.agenda_current, self.agenda_times = None, {}
        self.run = run
        self._misc()
        return {"phase": self.phase}

    @event("agenda.advance", line=daylog.agenda_line)
    def _agenda(self, e: Event) -> dict[str, Any]:
        if self.agenda_current is not None:
            self.agenda_times[self.agenda_current]["ended"] = e.ts
        self.agenda_current = e.data["item"]
        self.agenda_times[self.agenda_current] = {"started": e.ts, "ended": None}
        self._misc()
        return {"item": self.agenda_current}

    # -- derived -----------------------------------------------------------------------------

    def derived_status(self, site: SiteState, now: float) -> str:
        return derive_status(site, now, self.config.heartbeat.timeout_seconds, self.config.required_checks)

    def status_drift(self, now: float, site_ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """Sites whose derived status differs from the recorded one: (site, new status) to record."""
        ids = self.sites if site_ids is None else site_ids
        out = []
        for sid in ids:
            site = self.sites[sid]
            status = self.derived_status(site, now)
            if status != site.status:
                out.append((sid, status))
        return out

    def grace(self, now: float) -> None:
        """After a restart, give live sites one timeout to reconnect before they count as lost."""
        for site in self.sites.values():
            if site.status in ("checking", "ready", "degraded") and site.last_seen is not None:
                site.last_seen = max(site.last_seen, now)

    def speaking_by_site(self) -> dict[str, dict[str, float]]:
        """Per site: turns on the floor, seconds spoken (finished turns), and when it last went on air."""
        out: dict[str, dict[str, float]] = {}
        for q in self.questions.values():
            if q.on_air_at is not None:
                site = out.setdefault(q.site, {"turns": 0, "seconds": 0.0, "last": 0.0})
                site["turns"] += 1
                site["seconds"] += q.spoken_seconds
                site["last"] = max(site["last"], q.on_air_at)
        return out

    def suggest_next(self) -> str | None:
        """The queued question to take next: the site that has spoken least, then the earliest in the queue."""
        spoken = self.speaking_by_site()
        queued = [q for q in self.questions.values() if q.status == "queued"]
        if not queued:
            return None
        none = {"turns": 0, "last": 0.0}
        best = min(queued, key=lambda q: (spoken.get(q.site, none)["turns"], spoken.get(q.site, none)["last"],
                                          q.position, q.seq))
        return best.id

    def plan(self) -> Plan:
        """This run's day plan: every planned time in every view comes from it."""
        return Plan.of(self.config, self.run)

    def changed_since(self, seq: int) -> tuple[list[str], list[str]]:
        """Sites and questions changed after `seq`, for a subscriber resuming after a reconnect."""
        sites = [s.id for s in self.sites.values() if s.updated_seq > seq]
        questions = [q.id for q in self.questions.values() if q.updated_seq > seq]
        return sites, questions
