"""The entities the fold keeps (sites, incidents, questions) and how each is shown to clients."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from hub.config import Site as SiteConfig

SITE_STATUSES = ("offline", "checking", "ready", "degraded", "lost")
QUESTION_STATUSES = ("submitted", "queued", "on_air", "answered", "deferred", "answered_written", "rejected", "merged")
INCIDENT_KINDS = ("audio", "video", "network", "power", "other")
PHASES = ("setup", "rehearsal", "live", "closed")
AGENCY_STATUSES = ("head", "deputy", "absent")


def iso(ts: float | None, tz: ZoneInfo) -> str | None:
    """A timestamp in the event's time zone, as clients and reports show it."""
    if ts is None:
        return None
    return _iso(ts, tz)


@functools.lru_cache(maxsize=16384)
def _iso(ts: float, tz: ZoneInfo) -> str:
    """Cached: every view re-formats the same check-in and status times, frame after frame."""
    return dt.datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


@dataclass(slots=True)
class Incident:
    id: str
    kind: str
    note: str
    opened: float
    closed: float | None = None
    close_note: str | None = None

    def view(self, tz: ZoneInfo) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "note": self.note, "opened": iso(self.opened, tz),
                "closed": iso(self.closed, tz)}


@dataclass(slots=True)
class SiteState:
    """What the log says about one site, plus the clock inputs (last seen) the status derives from."""

    config: SiteConfig
    status: str = "offline"
    status_since: float | None = None
    ever_ready: bool = False
    technician: str | None = None
    phone: str | None = None
    checked_in: float | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    check_notes: dict[str, str] = field(default_factory=dict)
    last_seen: float | None = None
    last_heartbeat: float | None = None
    last_stored_heartbeat: float | None = None
    pushed_heartbeat: float | None = None
    measurements: dict[str, Any] = field(default_factory=dict)
    link: str | None = None  # "good" or "poor", from the round-trip time against the threshold
    video: str | None = None  # bridge presence: "present", "no_video", "absent" or "unknown"; None without a bridge
    incidents: dict[str, Incident] = field(default_factory=dict)
    attendance: dict[str, int] = field(default_factory=dict)
    peak: int = 0
    updated_seq: int = 0

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def present(self) -> int:
        return sum(self.attendance.values())

    def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents.values() if i.closed is None]

    def view(self, tz: ZoneInfo) -> dict[str, Any]:
        c = self.config
        return {
            "id": c.id, "name": c.name, "kind": c.kind, "group": c.group, "expected": c.expected,
            "capacity": c.capacity, "status": self.status, "status_since": iso(self.status_since, tz),
            "technician": self.technician, "checked_in": iso(self.checked_in, tz),
            "checks": dict(self.checks), "attendance": dict(self.attendance), "present": self.present,
            "last_heartbeat": iso(self.last_heartbeat, tz), "rtt_ms": self.measurements.get("rtt_ms"),
            "link": self.link, "video": self.video, "open_incidents": len(self.open_incidents()),
            "incidents": [i.view(tz) for i in self.open_incidents()], "seq": self.updated_seq,
        }


@dataclass(slots=True)
class Question:
    id: str
    seq: int
    site: str
    origin: str
    topic: str
    text: str
    delegate: dict[str, str]
    wants_to_speak: bool
    submitted: float
    agency: str | None = None
    status: str = "submitted"
    position: float = 0.0
    merged_into: str | None = None
    co_askers: list[dict[str, Any]] = field(default_factory=list)
    answer_note: str | None = None
    reason: str | None = None
    on_air_at: float | None = None
    ended_at: float | None = None
    spoken_seconds: float = 0.0
    deferred_at: float | None = None
    due: str | None = None
    draft: dict[str, Any] | None = None
    written: dict[str, Any] | None = None
    actor: str | None = None
    updated_seq: int = 0

    def view(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "id": self.id, "site": self.site, "origin": self.origin, "topic": self.topic, "text": self.text,
            "delegate": dict(self.delegate), "wants_to_speak": self.wants_to_speak, "agency": self.agency,
            "status": self.status, "position": self.position, "merged_into": self.merged_into,
            "co_askers": list(self.co_askers), "answer_note": self.answer_note, "reason": self.reason,
            "submitted": iso(self.submitted, tz), "on_air_at": iso(self.on_air_at, tz),
            "ended_at": iso(self.ended_at, tz), "spoken_seconds": round(self.spoken_seconds, 1),
            "due": self.due, "draft": self.draft, "written": self.written, "seq": self.updated_seq,
        }
