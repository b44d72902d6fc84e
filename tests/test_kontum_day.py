"""The whole Kon Tum 2023 day over real websockets, then the hub's state checked number by number."""

from __future__ import annotations

from collections import Counter

import httpx

from .conftest import ManualClock, RunningHub, StartHub
from .kontum_day import Expected, load_rows, replay


async def state_of(running: RunningHub) -> dict:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{running.url}/api/state",
                                  headers={"Authorization": f"Bearer {running.token('chair')}"})
    response.raise_for_status()
    return response.json()


def check(state: dict, exp: Expected) -> None:
    """Every figure of the day, as the chair's snapshot shows it."""
    sites = {s["id"]: s for s in state["sites"]}
    assert {s: v["attendance"] for s, v in sites.items()} == exp.attendance
    assert {s: v["present"] for s, v in sites.items()} == exp.present
    assert state["totals"]["attendance"] == exp.total
    assert state["totals"]["by_category"] == exp.by_category
    questions = {q["id"]: q for q in state["questions"]}
    assert {q: v["status"] for q, v in questions.items()} == exp.statuses
    assert state["totals"]["questions"] == exp.by_status
    assert dict(Counter(q["topic"] for q in questions.values())) == exp.by_topic
    by_topic_status: dict[str, dict[str, int]] = {}
    for q in questions.values():
        topic = by_topic_status.setdefault(q["topic"], {})
        topic[q["status"]] = topic.get(q["status"], 0) + 1
    assert by_topic_status == exp.by_topic_status
    assert dict(Counter(q["origin"] for q in questions.values())) == exp.by_origin
    for agency, qids in exp.deferred_by_agency.items():
        assert all(questions[q]["agency"] == agency for q in qids)
    for merged, into in exp.merged.items():
        assert questions[merged]["merged_into"] == into
        assert [a["question"] for a in questions[into]["co_askers"]] == [merged]
    for qid, written in exp.written.items():
        assert {k: questions[qid]["written"][k] for k in written} == written
    assert {a: v["status"] for a, v in state["agencies"].items()} == exp.agencies
    assert state["event"]["phase"] == exp.phase
    assert [i["id"] for i in state["agenda"]["items"] if i["started"]] == exp.agenda_done


async def test_kon_tum_day_adds_up(start_hub: StartHub, clock: ManualClock) -> None:
    running = await start_hub(clock=clock)
    exp = await replay(running, clock)
    # The replay's own figures match the published ones: 11 halls, 2,300 people, 33 questions in 5 groups.
    assert len(exp.present) == 11 and exp.total == 2300 == running.config.expected_total
    assert exp.present == {s.id: s.expected for s in running.config.sites}
    rows = load_rows()
    assert len(exp.statuses) == len(rows) == 33 and len(exp.by_topic) == 5
    assert exp.by_status == {"answered": 10, "deferred": 21, "merged": 1, "answered_written": 1}
    state = await state_of(running)
    check(state, exp)
    questions = {q["id"]: q for q in state["questions"]}
    assert {q: questions[q]["spoken_seconds"] for q in exp.answered_live} == exp.speaking_seconds
    assert state["floor"]["by_site"] == exp.speaking_by_site
    assert {questions[q]["due"] for qids in exp.deferred_by_agency.values() for q in qids} == {exp.due}
    assert {q: questions[q]["answer_note"] for q in exp.answer_notes} == exp.answer_notes != {}


async def test_kon_tum_day_survives_a_restart(start_hub: StartHub) -> None:
    """The same figures after the hub is stopped and the state rebuilt from the stored events alone."""
    running = await start_hub()
    exp = await replay(running)
    await running.close_clients()
    await running.server.close()
    again = await start_hub()
    check(await state_of(again), exp)
    actors = {e.actor for e in again.hub.log.read(0) if e.type.startswith("attendance.")}
    assert actors == {exp.tokens[f"registrar:{s}"] for s in exp.present}
