"""The run's plan: the one place a planned time is derived from `[event] date` and `start`.

A run is one playing of the meeting day. It opens with the first change of phase to `rehearsal` or
`live` on a local day (in the event's time zone) and lasts until the phase goes back to `setup` or a
later day opens another. A run on the configured date keeps the config's plan. A run on another day
(a rehearsal on the eve, a demo) shifts the whole day plan to start the moment it first goes live, and
has no planned start before that. The session's times, the readiness deadline, the programme, the
report's readiness against the opening, and the meeting date and reply deadlines of the documents and
`/api/deadlines` all come from `Plan`, so no two of them can disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hub.config import AgendaItem, Config

OPENING_PHASES = frozenset({"rehearsal", "live"})

Run = tuple[float | None, float | None]  # when the run opened, when it first went live


def today(tz: dt.tzinfo, now: float) -> dt.date:
    """The date the clock shows in the event's time zone."""
    return dt.datetime.fromtimestamp(now, tz).date()


def follow_run(run: Run, phase: str, ts: float, tz: dt.tzinfo) -> Run:
    """The run after a change of phase at `ts`: `setup` ends it; the day's first `rehearsal` or `live` opens one."""
    opened, live = run
    if phase == "setup":
        return None, None
    if phase in OPENING_PHASES and (opened is None or today(tz, opened) != today(tz, ts)):
        opened, live = ts, None
    if phase == "live" and live is None:
        live = ts
    return opened, live


@dataclass(frozen=True, slots=True)
class Plan:
    """This run's day plan: the day the meeting is held and when it starts (None: on another day, not live yet)."""

    config: Config
    day: dt.date
    start: float | None

    @classmethod
    def of(cls, config: Config, run: Run) -> Plan:
        event, (opened, live) = config.event, run
        day = event.date if opened is None else today(event.tz, opened)
        return cls(config, day, event.starts_at.timestamp() if day == event.date else live)

    def at(self, minutes: float) -> float | None:
        """The planned moment `minutes` after the start (before it when negative)."""
        return None if self.start is None else self.start + minutes * 60

    @property
    def end(self) -> float | None:
        return self.at(self.config.event.duration_minutes)

    @property
    def readiness_deadline(self) -> float | None:
        return self.at(-self.config.event.readiness_deadline_minutes)

    def programme(self) -> list[tuple[AgendaItem, float | None, float | None]]:
        """Each programme item with its planned start and end: the earlier items' minutes after the start."""
        out, offset = [], 0
        for item in self.config.agenda:
            out.append((item, self.at(offset), self.at(offset + item.minutes)))
            offset += item.minutes
        return out

    def due(self, deferred: dt.date) -> dt.date:
        """A written answer is due `written_answer_days` after the meeting, or after its deferral when that is later."""
        return max(self.day, deferred) + dt.timedelta(days=self.config.deadlines.written_answer_days)
