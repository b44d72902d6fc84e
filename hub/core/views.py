"""What each audience sees of the state: the snapshot, the rows of sites and questions, the shared parts.

Built on demand from the fold (`hub.core.state`), never stored: an agency sees only its questions; a
pushed frame carries the rows that changed and the shared parts that moved.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub.core.model import Question, iso
from hub.core.state import TIMELINE_VIEW_POINTS, State

# The parts every view holds whole (shared_view), and as a pushed frame carries them (pushed_shared): the
# timeline as its tail. auth_ok lists PUSHED_SHARED, so a client merges exactly what the hub pushes.
SHARED_PARTS = ("event", "totals", "floor", "agenda", "agencies")
PUSHED_SHARED = (*SHARED_PARTS, "timeline_tail")

def question_visible(q: Question, agency: str | None) -> bool:
    return agency is None or q.agency == agency


def event_view(state: State) -> dict[str, Any]:
    ev, plan = state.config.event, state.plan()
    return {
        "id": ev.id, "title": ev.title, "organiser": ev.organiser, "venue": ev.venue, "phase": state.phase,
        "date": ev.date.isoformat(), "start": ev.start, "duration_minutes": ev.duration_minutes,
        "timezone": ev.timezone, "starts_at": ev.starts_at.isoformat(), "ends_at": ev.ends_at.isoformat(),
        "session_date": plan.day.isoformat(), "session_starts_at": iso(plan.start, state.tz),
        "session_ends_at": iso(plan.end, state.tz), "readiness_deadline": iso(plan.readiness_deadline, state.tz),
        "phase_history": list(state.phase_history),
    }


def totals(state: State) -> dict[str, Any]:
    questions: dict[str, int] = {}
    for q in state.questions.values():
        questions[q.status] = questions.get(q.status, 0) + 1
    spoken = [q.spoken_seconds for q in state.questions.values() if q.spoken_seconds > 0]
    return {
        "attendance": state.present_total, "expected": state.config.expected_total,
        "by_category": dict(state.present_by_category), "sites_ready": state.sites_ready, "sites": len(state.sites),
        "sites_by_status": dict(state.sites_by_status),
        "questions": questions, "avg_answer_seconds": round(sum(spoken) / len(spoken), 1) if spoken else None,
    }


def floor_view(state: State) -> dict[str, Any]:
    floor = dict(state.floor) if state.floor else {"site": None, "question": None, "since": None}
    floor["since"] = iso(floor["since"], state.tz)
    floor["next"] = state.suggest_next()
    floor["by_site"] = {site: {"turns": int(v["turns"]), "seconds": round(v["seconds"], 1)}
                        for site, v in state.speaking_by_site().items()}
    return floor


def agenda_view(state: State) -> dict[str, Any]:
    """The programme, each item planned (the run's start + earlier items' minutes) against its actual times.

    `late_seconds` (per item) and `behind_seconds` (the current item) are positive behind plan, negative
    ahead; `forecast_end` assumes the current and later items take their planned minutes.
    """
    items = []
    plan = state.plan()
    for item, planned, planned_end in plan.programme():
        times = state.agenda_times.get(item.id, {})
        started, ended = times.get("started"), times.get("ended")
        items.append({"id": item.id, "title": item.title, "minutes": item.minutes, "topic": item.topic,
                      "started": iso(started, state.tz), "ended": iso(ended, state.tz),
                      "planned_start": iso(planned, state.tz), "planned_end": iso(planned_end, state.tz),
                      "late_seconds": None if started is None or planned is None else round(started - planned),
                      "actual_minutes": None if started is None or ended is None else round((ended - started) / 60, 1)})
    current = next((i for i in items if i["id"] == state.agenda_current), None)
    forecast_end = None
    if current is not None:
        left = sum(i["minutes"] for i in items[items.index(current):])
        forecast_end = iso(state.agenda_times[current["id"]]["started"] + left * 60, state.tz)  # type: ignore[operator]
    planned_end = plan.at(sum(item.minutes for item in state.config.agenda))
    return {"current": current, "items": items, "planned_end": iso(planned_end, state.tz),
            "behind_seconds": current["late_seconds"] if current else None, "forecast_end": forecast_end}


def shared_view(state: State) -> dict[str, Any]:
    """The parts every view holds whole (SHARED_PARTS): a pushed frame carries those that changed since the last."""
    parts = {"event": event_view, "totals": totals, "floor": floor_view, "agenda": agenda_view,
             "agencies": lambda state: dict(state.agencies)}
    return {key: parts[key](state) for key in SHARED_PARTS}


def meta_view(state: State) -> dict[str, Any]:
    c = state.config
    return {
        "categories": [x.model_dump() for x in c.categories], "topics": [x.model_dump() for x in c.topics],
        "agencies": [x.model_dump() for x in c.agencies], "checklist": [x.model_dump() for x in c.checklist],
        "heartbeat": c.heartbeat.model_dump(), "deadlines": c.deadlines.model_dump(mode="json"),
        "bridge": c.bridge.kind if c.bridge else None,
    }


def snapshot(state: State, agency: str | None = None) -> dict[str, Any]:
    return {
        "seq": state.seq, **shared_view(state), "config": meta_view(state),
        "timeline": state.timeline[-TIMELINE_VIEW_POINTS:],
        "sites": [s.view(state.tz) for s in state.sites.values()],
        "questions": [q.view(state.tz) for q in state.questions.values() if question_visible(q, agency)],
    }


def pushed_shared(state: State, timeline_from: int) -> dict[str, Any]:
    """The shared parts as a pushed frame carries them (PUSHED_SHARED): the timeline from point `timeline_from` on.

    Only the last point of the timeline ever moves, so a client that holds the point at `timeline_from`
    (settled when it last heard) drops it and what follows and appends the tail: it then holds the
    timeline exactly, however many points moved or were added meanwhile. Never more than a view holds."""
    start = max(timeline_from, len(state.timeline) - TIMELINE_VIEW_POINTS)
    return {**shared_view(state), "timeline_tail": state.timeline[start:]}


def rows(state: State, site_ids: Iterable[str], question_ids: Iterable[str], agency: str | None = None
         ) -> dict[str, Any]:
    """The given sites and questions, whole, as this audience may see them."""
    questions = (state.questions[q] for q in question_ids)
    return {
        "sites": [state.sites[s].view(state.tz) for s in site_ids],
        "questions": [q.view(state.tz) for q in questions if question_visible(q, agency)],
    }
