"""Every websocket command: its schema, the roles allowed, and the event it becomes.

Each command declares its schema, its roles and its binding (to the caller's site, or to its agency's
questions) at registration; the hub's one dispatch decides authority from that. Handlers check only the
domain (that referenced things exist, that a move is allowed) and return the event to store; they never
touch storage and never change state themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

from hub import roles
from hub.core.errors import Answer, Conflict, NotFound, Subscription
from hub.core.model import AGENCY_STATUSES, INCIDENT_KINDS, PHASES
from hub.core.state import OPEN_QUESTION, TRANSITIONS, State
from hub.tokens import Identity

if TYPE_CHECKING:
    from hub.core.hub import Hub

Id = Annotated[str, Field(min_length=1, max_length=64)]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Note = Annotated[str, Field(max_length=1000)]
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]

MAX_QUESTION_CHARS = 2000
MAX_ANSWER_CHARS = 20000
SCALARS = frozenset({str, int, float, bool})  # a command field's type when it is not a nested model
PRE_PHASES = frozenset({"setup", "rehearsal"})  # when registrars may still hand in questions collected before the day


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Subscribe(Command):
    since: Annotated[int, Field(ge=0)] | None = None


class Ping(Command):
    sent: StrictFloat | StrictInt | None = None


class SiteCheckin(Command):
    site: Id
    technician: Text200
    phone: Annotated[str, Field(max_length=40, pattern=r"^[0-9 +().-]*$")] | None = None


class SiteCheck(Command):
    site: Id
    item: Id
    ok: bool
    note: Note | None = None


class SiteHeartbeat(Command):
    """A heartbeat takes any flat measurements beside `site` (rtt_ms, cpu, bridge_ms...)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    site: Id
    rtt_ms: Annotated[float, Field(ge=0, le=600_000)] | None = None

    @model_validator(mode="after")
    def _flat(self) -> SiteHeartbeat:
        extra = self.model_extra or {}
        if len(extra) > 20:
            raise ValueError("at most 20 measurements")
        for key, value in extra.items():
            if len(key) > 40 or not isinstance(value, (int, float, bool, str)) or (isinstance(value, str) and len(value) > 200):
                raise ValueError(f"measurement {key[:40]!r} must be a number, a bool or a short string")
        return self

    def measurements(self) -> dict[str, Any]:
        return self.model_dump(exclude={"site"}, exclude_none=True)


class SiteIncident(Command):
    site: Id
    kind: Literal[INCIDENT_KINDS]  # type: ignore[valid-type]
    open: bool
    note: Note = ""
    incident: Id | None = None  # which incident to close; default: the latest open one of this kind


class AttendanceSet(Command):
    site: Id
    category: Id
    count: Annotated[int, Field(ge=0, le=1_000_000)]


class AttendanceAdd(Command):
    site: Id
    category: Id
    delta: Annotated[int, Field(ge=-1_000_000, le=1_000_000)]


class Delegate(Command):
    name: Text200
    unit: Annotated[str, Field(max_length=200)] = ""


class QuestionSubmit(Command):
    site: Id
    delegate: Delegate
    topic: Id
    text: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]
    agency: Id | None = None
    wants_to_speak: bool = False
    origin: Literal["floor", "pre"] = "floor"
    answer_note: Annotated[str, Field(max_length=MAX_ANSWER_CHARS)] | None = None  # prepared answer, on import


class QuestionUpdate(Command):
    question: Id
    status: Literal["submitted", "queued", "on_air", "answered", "deferred", "rejected", "merged"] | None = None
    agency: Id | None = None
    position: Annotated[float, Field(ge=-1e12, le=1e12, strict=False)] | None = None
    merged_into: Id | None = None
    answer_note: Annotated[str, Field(max_length=MAX_ANSWER_CHARS)] | None = None
    reason: Note | None = None

    @model_validator(mode="after")
    def _something(self) -> QuestionUpdate:
        if not self.model_fields_set - {"question"}:
            raise ValueError("give at least one of status, agency, position, merged_into, answer_note, reason")
        if self.status == "merged" and self.merged_into is None:
            raise ValueError('status "merged" needs merged_into: the question this one is merged into')
        if self.merged_into is not None and self.status not in (None, "merged"):
            raise ValueError(f'merged_into makes the status "merged", not {self.status!r}; leave status out')
        return self


class FloorCall(Command):
    site: Id
    question: Id | None = None


class AgencyAttendance(Command):
    agency: Id
    status: Literal[AGENCY_STATUSES]  # type: ignore[valid-type]
    delegate: Text200 | None = None
    written_report: bool = False


class EventPhase(Command):
    phase: Literal[PHASES]  # type: ignore[valid-type]


class QuestionAnswer(Command):
    question: Id
    kind: Literal["draft", "written"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_ANSWER_CHARS)]
    reference: Annotated[str, Field(max_length=100)] | None = None
    date: IsoDate | None = None

    @model_validator(mode="after")
    def _real_date(self) -> QuestionAnswer:
        if self.date is not None:
            try:
                dt.date.fromisoformat(self.date)
            except ValueError:
                raise ValueError(f"date {self.date!r} is not a calendar date") from None
        return self


class AgendaAdvance(Command):
    item: Id


class Planned(NamedTuple):
    """The event a command becomes, before it has a seq."""

    type: str
    site: str | None
    data: dict[str, Any]


Handler = Callable[[State, Identity, Any], Planned]  # a stored command: decides its event from the state
Builtin = Callable[["Hub", Identity, Any], "Answer | Subscription"]  # answered by the hub itself
Binding = Literal["site", "question"] | None


@dataclass(frozen=True, slots=True)
class Spec:
    """A command as registered: what the dispatch needs to parse it, authorise it and run it."""

    name: str
    model: type[Command]
    roles: frozenset[str]
    handler: Handler | Builtin
    stores: bool  # changes state, so it carries an op_id and its handler returns the event to store
    bound: Binding  # "site": a site-bound token may name only its own site; "question": an agency token
    #                 may name only a question assigned to its agency


COMMANDS: dict[str, Spec] = {}


def command(name: str, model: type[Command], roles: set[str] | frozenset[str], bound: Binding = None
            ) -> Callable[[Handler], Handler]:
    """Register a stored command with its schema, the roles that may send it (admin always may) and its binding."""
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Spec(name, model, frozenset(roles) | {"admin"}, handler, True, bound)
        return handler
    return register


def builtin(name: str, model: type[Command], roles: set[str] | frozenset[str], bound: Binding = None
            ) -> Callable[[Builtin], Builtin]:
    """Register a command the hub answers itself, with no op_id (it may still store an event: a heartbeat)."""
    def register(handler: Builtin) -> Builtin:
        COMMANDS[name] = Spec(name, model, frozenset(roles) | {"admin"}, handler, False, bound)
        return handler
    return register


@builtin("subscribe", Subscribe, roles.ANY)
def subscribe(hub: Hub, who: Identity, cmd: Subscribe) -> Subscription:
    return Subscription(cmd.since)


@builtin("ping", Ping, roles.ANY)
def ping(hub: Hub, who: Identity, cmd: Ping) -> Answer:
    return Answer({"sent": cmd.sent, "now": hub.clock()})


@builtin("site.heartbeat", SiteHeartbeat, {"technician"}, bound="site")
def site_heartbeat(hub: Hub, who: Identity, cmd: SiteHeartbeat) -> Answer:
    return hub.heartbeat(who, cmd)


def _site_exists(state: State, site: str) -> None:
    if site not in state.sites:
        raise NotFound(f"unknown site {site!r}")


def _one_of(kind: str, value: str | None, known: frozenset[str]) -> None:
    if value is not None and value not in known:
        raise NotFound(f"unknown {kind} {value!r}")


def _question(state: State, qid: str):
    try:
        return state.questions[qid]
    except KeyError:
        raise NotFound(f"unknown question {qid!r}") from None


def _data(cmd: Command, *exclude: str) -> dict[str, Any]:
    """The event's data: the command's fields but `site` (the event's own column), None left out.

    What `model_dump(exclude=..., exclude_none=True)` gives for these flat models (a nested one, the
    delegate, is dumped), read straight from the instance: 0.35 µs a command against model_dump's 0.74.
    Scalars are told by their exact type: `isinstance(value, BaseModel)` goes through pydantic's metaclass.
    """
    return {key: value if type(value) in SCALARS else value.model_dump(exclude_none=True)
            for key, value in cmd.__dict__.items() if value is not None and key != "site" and key not in exclude}


@command("site.checkin", SiteCheckin, {"technician"}, bound="site")
def site_checkin(state: State, who: Identity, cmd: SiteCheckin) -> Planned:
    _site_exists(state, cmd.site)
    return Planned("site.checkin", cmd.site, _data(cmd))


@command("site.check", SiteCheck, {"technician"}, bound="site")
def site_check(state: State, who: Identity, cmd: SiteCheck) -> Planned:
    _site_exists(state, cmd.site)
    _one_of("checklist item", cmd.item, state.config.item_ids["checklist"])
    if state.sites[cmd.site].checked_in is None:
        raise Conflict("check in first (site.checkin), then report checklist items")
    return Planned("site.check", cmd.site, _data(cmd))


@command("site.incident", SiteIncident, {"technician"}, bound="site")
def site_incident(state: State, who: Identity, cmd: SiteIncident) -> Planned:
    _site_exists(state, cmd.site)
    data = _data(cmd, "incident")
    if not cmd.open:
        site = state.sites[cmd.site]
        open_ones = [i for i in site.open_incidents() if (i.id == cmd.incident if cmd.incident else i.kind == cmd.kind)]
        if not open_ones:
            target = f"incident {cmd.incident!r}" if cmd.incident else f"{cmd.kind} incident"
            raise NotFound(f"no open {target} at site {cmd.site!r}")
        data["incident"] = open_ones[-1].id
    return Planned("site.incident", cmd.site, data)


def _attendance(state: State, cmd: AttendanceSet | AttendanceAdd, type_: str) -> Planned:
    _site_exists(state, cmd.site)
    _one_of("category", cmd.category, state.config.item_ids["categories"])
    return Planned(type_, cmd.site, _data(cmd))


@command("attendance.set", AttendanceSet, {"registrar"}, bound="site")
def attendance_set(state: State, who: Identity, cmd: AttendanceSet) -> Planned:
    return _attendance(state, cmd, "attendance.set")


@command("attendance.add", AttendanceAdd, {"registrar"}, bound="site")
def attendance_add(state: State, who: Identity, cmd: AttendanceAdd) -> Planned:
    return _attendance(state, cmd, "attendance.add")


@command("question.submit", QuestionSubmit, {"registrar", "moderator"}, bound="site")
def question_submit(state: State, who: Identity, cmd: QuestionSubmit) -> Planned:
    _site_exists(state, cmd.site)
    _one_of("topic", cmd.topic, state.config.item_ids["topics"])
    _one_of("agency", cmd.agency, state.config.item_ids["agencies"])
    if who.role == "registrar" and state.phase == "closed":
        raise Conflict("the meeting is closed: it takes no more questions from the floor")
    if cmd.origin == "pre" and who.role == "registrar" and state.phase not in PRE_PHASES:
        raise Conflict(f"questions collected before the day (origin \"pre\") are taken in setup or rehearsal, "
                       f"not while the event is {state.phase}")
    return Planned("question.submit", cmd.site, _data(cmd))


@command("question.update", QuestionUpdate, {"moderator"})
def question_update(state: State, who: Identity, cmd: QuestionUpdate) -> Planned:
    q = _question(state, cmd.question)
    _one_of("agency", cmd.agency, state.config.item_ids["agencies"])
    if cmd.merged_into is not None:
        into = _question(state, cmd.merged_into)
        if into.id == q.id or into.status == "merged" or q.status not in OPEN_QUESTION | {"deferred"}:
            raise Conflict(f"cannot merge {q.id} ({q.status}) into {into.id} ({into.status})")
        return Planned("question.update", q.site, _data(cmd, "status"))  # `status: "merged"` adds nothing
    if cmd.status is not None and cmd.status != q.status and cmd.status not in TRANSITIONS[q.status]:
        raise Conflict(f"question {q.id} is {q.status}; it cannot become {cmd.status}")
    if cmd.status == "deferred" and not (cmd.agency or q.agency):
        raise Conflict(f"question {q.id} needs an answering agency before it is deferred")
    return Planned("question.update", q.site, _data(cmd))


@command("floor.call", FloorCall, {"moderator", "chair"})
def floor_call(state: State, who: Identity, cmd: FloorCall) -> Planned:
    _site_exists(state, cmd.site)
    if cmd.question is not None:
        q = _question(state, cmd.question)
        askers = {q.site, *(a["site"] for a in q.co_askers)}
        if cmd.site not in askers:
            raise Conflict(f"question {q.id} was not asked at site {cmd.site!r}")
        if q.status != "on_air" and "on_air" not in TRANSITIONS[q.status]:
            raise Conflict(f"question {q.id} is {q.status}; it cannot go on air")
    return Planned("floor.call", cmd.site, _data(cmd))


@command("agency.attendance", AgencyAttendance, {"moderator"})
def agency_attendance(state: State, who: Identity, cmd: AgencyAttendance) -> Planned:
    _one_of("agency", cmd.agency, state.config.item_ids["agencies"])
    return Planned("agency.attendance", None, _data(cmd))


@command("event.phase", EventPhase, {"moderator"})
def event_phase(state: State, who: Identity, cmd: EventPhase) -> Planned:
    return Planned("event.phase", None, _data(cmd))


@command("question.answer", QuestionAnswer, {"agency", "moderator"}, bound="question")
def question_answer(state: State, who: Identity, cmd: QuestionAnswer) -> Planned:
    q = _question(state, cmd.question)
    if cmd.kind == "written" and q.status in ("merged", "rejected", "answered_written"):
        raise Conflict(f"question {q.id} is {q.status}; it takes no written answer")
    return Planned("question.answer", q.site, _data(cmd))


@command("agenda.advance", AgendaAdvance, {"moderator"})
def agenda_advance(state: State, who: Identity, cmd: AgendaAdvance) -> Planned:
    _one_of("programme item", cmd.item, state.config.item_ids["agenda"])
    return Planned("agenda.advance", None, _data(cmd))
