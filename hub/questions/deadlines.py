"""Each answering agency's progress against the plan's deadlines, judged by the hub clock in the event's time zone.

A deadline date is the last day allowed: work still missing the day after it is late. Questions merged
into another or rejected need no answer and are not counted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.core.model import Question
from hub.core.schedule import today
from hub.core.state import State

NO_ANSWER_NEEDED = frozenset({"merged", "rejected"})
IN_WRITING = frozenset({"deferred", "answered_written"})


def _past(deadline: dt.date | None, day: dt.date) -> bool:
    return deadline is not None and day > deadline


def _agency_row(agency_id: str, name: str) -> dict[str, Any]:
    return {"id": agency_id, "name": name, "assigned": 0, "to_draft": 0, "drafted": 0, "drafted_on_time": 0,
            "deferred": 0, "written": 0, "outstanding": 0, "overdue": 0, "due": None, "late": []}


def _count(row: dict[str, Any], q: Question, draft_by: dt.date | None, day: dt.date) -> None:
    """Add one assigned question to its agency's row."""
    row["assigned"] += 1
    if q.origin == "pre":
        row["to_draft"] += 1
        if q.draft is not None:
            row["drafted"] += 1
            row["drafted_on_time"] += draft_by is None or dt.date.fromisoformat(q.draft["at"][:10]) <= draft_by
    if q.status in IN_WRITING:
        row["deferred"] += 1
        if q.status == "answered_written":
            row["written"] += 1
        else:
            row["outstanding"] += 1
            row["overdue"] += q.due is not None and day > dt.date.fromisoformat(q.due)
            row["due"] = min(filter(None, (row["due"], q.due)))


def progress(state: State, now: float) -> dict[str, Any]:
    """Deadlines with what is still missing, and per-agency counts with the deadlines each has missed."""
    config, day = state.config, today(state.tz, now)
    d = config.deadlines
    rows = {a.id: _agency_row(a.id, a.name) for a in config.agencies}
    for q in state.questions.values():
        if q.agency in rows and q.status not in NO_ANSWER_NEEDED:
            _count(rows[q.agency], q, d.draft_answers, day)
    for row in rows.values():
        if _past(d.draft_answers, day) and row["drafted"] < row["to_draft"]:
            row["late"].append("draft_answers")
        if row["overdue"]:
            row["late"].append("written_answers")
    pre = [q for q in state.questions.values() if q.origin == "pre" and q.status not in NO_ANSWER_NEEDED]
    plan = state.plan()
    waiting = [row["due"] for row in rows.values() if row["due"]]
    written_due = dt.date.fromisoformat(min(waiting)) if waiting else plan.due(plan.day)
    deadlines = [
        _deadline("collection", d.collection, day, 0,
                  after=sum(_past(d.collection, today(state.tz, q.submitted)) for q in pre)),
        _deadline("compilation", d.compilation, day, sum(q.agency is None for q in pre)),
        _deadline("draft_answers", d.draft_answers, day, sum(r["to_draft"] - r["drafted"] for r in rows.values())),
        _deadline("programme", d.programme, day, 0 if config.agenda else 1),
        _deadline("written_answers", written_due, day, sum(r["outstanding"] for r in rows.values()),
                  late=any(r["overdue"] for r in rows.values())),
    ]
    return {"today": day.isoformat(), "event_date": plan.day.isoformat(), "written_due": written_due.isoformat(),
            "pre_questions": len(pre), "deadlines": deadlines, "agencies": list(rows.values()),
            "late_agencies": [r["id"] for r in rows.values() if r["late"]]}


def _deadline(key: str, date: dt.date | None, day: dt.date, missing: int, after: int = 0,
              late: bool | None = None) -> dict[str, Any]:
    """One deadline: `missing` work still to do, `after` items that came in after it, and whether it is late."""
    passed = _past(date, day)
    return {"id": key, "date": date.isoformat() if date else None, "passed": passed, "missing": missing,
            "after_deadline": after, "late": (passed and missing > 0) if late is None else late}


def for_agency(report: dict[str, Any], agency: str) -> dict[str, Any]:
    """What one agency's liaison may see: the dates, and its own row only."""
    dates = [{"id": x["id"], "date": x["date"], "passed": x["passed"]} for x in report["deadlines"]]
    own = [r for r in report["agencies"] if r["id"] == agency]
    return {**report, "deadlines": dates, "agencies": own, "late_agencies": [r["id"] for r in own if r["late"]],
            "pre_questions": None}
