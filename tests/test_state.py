"""The fold on its own, without a hub or a socket: property-based checks over generated logs.

Logs are made the way the hub makes them: a generated command goes through its registered handler
against the state folded so far (so only moves the handler allows become events), then is folded.
"""

from __future__ import annotations

import zlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config import Config, load_config
from hub.core import views
from hub.core.commands import COMMANDS
from hub.core.errors import HubError
from hub.core.events import EVENTS
from hub.core.state import State
from hub.log import snapshots as snapshot
from hub.log.base import Event
from hub.tokens import Identity

from .conftest import KON_TUM

CONFIG: Config = load_config(KON_TUM)
SITES = [s.id for s in CONFIG.sites][:4]
ITEMS = [c.id for c in CONFIG.checklist]
CATEGORIES = [c.id for c in CONFIG.categories]
TOPICS = [t.id for t in CONFIG.topics]
AGENCIES = [a.id for a in CONFIG.agencies]
MODERATOR = Identity("t-mod", "moderator")
QUESTION_STATUSES = ["submitted", "queued", "on_air", "answered", "deferred", "rejected"]
START = 1_700_800_000.0  # 24 Nov 2023, morning in Asia/Ho_Chi_Minh

# Events the hub records itself (not commands): status moves and video presence.
HUB_EVENTS = {"site.status", "site.presence"}

site = st.sampled_from(SITES)
question = st.integers(0, 5)  # an index into the questions submitted so far
note = st.text(alphabet="abc đêm", max_size=8)


def command(name: str, **fields: Any) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.fixed_dictionaries(fields).map(lambda f: (name, f))


COMMAND = st.one_of(
    command("site.checkin", site=site, technician=st.sampled_from(["Anh Minh", "Chị Lan"])),
    command("site.check", site=site, item=st.sampled_from(ITEMS), ok=st.booleans()),
    command("site.incident", site=site, kind=st.sampled_from(["audio", "video", "network"]), open=st.booleans(),
            note=note),
    command("site.heartbeat", site=site, rtt_ms=st.floats(1, 900)),
    command("attendance.set", site=site, category=st.sampled_from(CATEGORIES), count=st.integers(0, 300)),
    command("attendance.add", site=site, category=st.sampled_from(CATEGORIES), delta=st.integers(-50, 50)),
    command("question.submit", site=site, topic=st.sampled_from(TOPICS), text=st.just("Lương tối thiểu?"),
            delegate=st.just({"name": "Chị Hoa", "unit": "Công ty B"}), agency=st.sampled_from(AGENCIES)),
    command("question.update", question=question, status=st.sampled_from(QUESTION_STATUSES)),
    command("question.update", question=question, merged_into=question),
    command("question.answer", question=question, kind=st.sampled_from(["draft", "written"]),
            text=st.just("Sở đã trả lời.")),
    command("floor.call", site=site),
    command("agency.attendance", agency=st.sampled_from(AGENCIES), status=st.sampled_from(["head", "deputy", "absent"])),
    command("event.phase", phase=st.sampled_from(["setup", "rehearsal", "live", "closed"])),
    command("agenda.advance", item=st.sampled_from([a.id for a in CONFIG.agenda])),
    command("site.status", site=site, status=st.sampled_from(["checking", "ready", "degraded", "lost"])),
    command("site.presence", site=site, video=st.sampled_from(["present", "absent"])),
)


def make_log(commands: list[tuple[str, dict[str, Any]]], op_ids: bool = True) -> list[Event]:
    """The events these commands become, each decided against the state folded before it."""
    state, events = State(CONFIG), []
    for n, (name, fields) in enumerate(commands):
        fields = dict(fields)
        for key in ("question", "merged_into"):
            if key in fields:
                fields[key] = f"q{fields[key]}"
        if name in HUB_EVENTS:
            site_id = fields.pop("site")
            if name == "site.status":
                fields["previous"] = state.sites[site_id].status
            planned = (name, site_id, fields)
        else:
            spec = COMMANDS[name]
            try:
                cmd = spec.model.model_validate(fields)
                planned = tuple(spec.handler(state, MODERATOR, cmd)) if spec.stores else (
                    name, cmd.site, cmd.measurements())
            except (HubError, ValueError):
                continue
        type_, site_id, data = planned
        event = Event(seq=state.seq + 1, ts=START + 7 * n, type=type_, data=data, actor=MODERATOR.token_id,
                      site=site_id, op_id=f"op-{n}" if op_ids and spec_stores(type_) else None)
        state.apply(event)
        events.append(event)
    return events


def spec_stores(type_: str) -> bool:
    return type_ in COMMANDS and COMMANDS[type_].stores


def fold(events: list[Event], state: State | None = None) -> State:
    state = state or State(CONFIG)
    for event in events:
        state.apply(event)
    return state


def view(state: State) -> dict[str, Any]:
    """Everything a reader can see of the state, for every audience."""
    return {"seq": state.seq, "all": views.snapshot(state, None),
            **{agency: views.snapshot(state, agency)["questions"] for agency in AGENCIES}}


LOGS = st.lists(COMMAND, min_size=1, max_size=60)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(LOGS)
def test_folding_the_same_log_twice_gives_the_same_state(commands: list[tuple[str, dict[str, Any]]]) -> None:
    events = make_log(commands)
    assert view(fold(events)) == view(fold(events))


@SETTINGS
@given(LOGS, st.floats(0, 1))
def test_a_snapshot_plus_the_tail_equals_the_whole_fold(commands: list[tuple[str, dict[str, Any]]],
                                                        where: float) -> None:
    events = make_log(commands)
    cut = int(len(events) * where)
    saved = snapshot.load(CONFIG, zlib.compress(snapshot.dump(fold(events[:cut]))))
    assert saved is not None
    assert saved.seq == (events[cut - 1].seq if cut else 0)
    assert view(fold(events[cut:], saved)) == view(fold(events))


def test_every_event_type_in_the_vocabulary_folds() -> None:
    """Each event type the fold knows is made by some command or by the hub, and folds from a fresh log."""
    vocabulary = set(EVENTS)
    assert vocabulary == {name for name, spec in COMMANDS.items() if spec.stores} | {"site.heartbeat"} | HUB_EVENTS
    examples = {
        "site.checkin": [("site.checkin", {"site": SITES[0], "technician": "Anh Minh"})],
        "site.check": [("site.checkin", {"site": SITES[0], "technician": "Anh Minh"}),
                       ("site.check", {"site": SITES[0], "item": ITEMS[0], "ok": True})],
        "site.heartbeat": [("site.heartbeat", {"site": SITES[0], "rtt_ms": 30.0})],
        "site.incident": [("site.incident", {"site": SITES[0], "kind": "video", "open": True, "note": "mất hình"}),
                          ("site.incident", {"site": SITES[0], "kind": "video", "open": False, "note": ""})],
        "site.status": [("site.status", {"site": SITES[0], "status": "checking"})],
        "site.presence": [("site.presence", {"site": SITES[0], "video": "present"})],
        "attendance.set": [("attendance.set", {"site": SITES[0], "category": CATEGORIES[0], "count": 12})],
        "attendance.add": [("attendance.add", {"site": SITES[0], "category": CATEGORIES[0], "delta": 3})],
        "question.submit": [SUBMIT],
        "question.update": [SUBMIT, ("question.update", {"question": 1, "status": "queued"})],
        "question.answer": [SUBMIT, ("question.answer", {"question": 1, "kind": "draft", "text": "Dự thảo"})],
        "floor.call": [("floor.call", {"site": SITES[1]})],
        "agency.attendance": [("agency.attendance", {"agency": AGENCIES[0], "status": "head"})],
        "event.phase": [("event.phase", {"phase": "live"})],
        "agenda.advance": [("agenda.advance", {"item": CONFIG.agenda[0].id})],
    }
    assert set(examples) == vocabulary
    for type_, commands in examples.items():
        events = make_log(commands)
        assert [e.type for e in events] == [name for name, _ in commands], type_
        state = fold(events)
        assert state.seq == len(commands)
        assert state.version >= len(commands)


SUBMIT = ("question.submit", {"site": SITES[0], "topic": TOPICS[0], "text": "Lương?", "agency": AGENCIES[0],
                              "delegate": {"name": "Chị Hoa", "unit": ""}})


@SETTINGS
@given(LOGS)
def test_the_totals_kept_as_events_fold_equal_a_count_over_every_site(commands: list[tuple[str, dict[str, Any]]]
                                                                      ) -> None:
    state = fold(make_log(commands))
    by_status: dict[str, int] = {}
    by_category = {c.id: 0 for c in CONFIG.categories}
    for site in state.sites.values():
        by_status[site.status] = by_status.get(site.status, 0) + 1
        for category, count in site.attendance.items():
            by_category[category] += count
    totals = views.totals(state)
    assert totals["sites_by_status"] == by_status and totals["by_category"] == by_category
    assert sum(by_status.values()) == len(CONFIG.sites) and totals["attendance"] == sum(by_category.values())


def test_a_snapshot_keeps_the_questions_in_the_order_they_were_asked() -> None:
    """Found by the property above: with ten questions or more, q10 sorts before q9 in a snapshot's JSON."""
    ask = ("question.submit", {"site": "tinh", "topic": "training", "text": "Lương tối thiểu?",
                               "delegate": {"name": "Chị Hoa", "unit": "Công ty B"}, "agency": "sldtbxh"})
    events = make_log([ask] * 11)
    saved = snapshot.load(CONFIG, zlib.compress(snapshot.dump(fold(events))))
    assert saved is not None and list(saved.questions) == list(fold(events).questions)
    assert list(saved.questions)[-2:] == ["q10", "q11"]
    assert view(saved) == view(fold(events))
