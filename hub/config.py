"""Event configuration: TOML in, one validated `Config` out, errors that name the key and the line."""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
import typing
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SLUG = r"^[a-z0-9][a-z0-9-]{0,39}$"
ITEM_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"
HH_MM = r"^([01]\d|2[0-3]):[0-5]\d$"
WEB_URL = r"^https?://"
# What each pattern asks for, as check-config says it: pydantic's own message prints the regex.
PATTERN_HINTS = {
    SLUG: "up to 40 lowercase letters, digits and -, e.g. dak-ha",
    ITEM_ID: "up to 40 lowercase letters, digits, _ and -, e.g. video_link",
    HH_MM: "HH:MM, e.g. 07:30",
    WEB_URL: "an http:// or https:// address, e.g. https://meet.kontum.gov.vn",
}
Slug = Annotated[str, Field(pattern=SLUG)]
Name = Annotated[str, Field(min_length=1, max_length=300)]


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, key and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class EventInfo(_Strict):
    id: Slug
    title: Name
    date: dt.date
    start: Annotated[str, Field(pattern=HH_MM)]
    duration_minutes: Annotated[int, Field(gt=0, le=24 * 60)]
    timezone: str = "Asia/Ho_Chi_Minh"
    organiser: Name = "Ủy ban nhân dân tỉnh"
    venue: Name | None = None
    readiness_deadline_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 30

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def starts_at(self) -> dt.datetime:
        hour, minute = map(int, self.start.split(":"))
        return dt.datetime.combine(self.date, dt.time(hour, minute), tzinfo=self.tz)

    @property
    def ends_at(self) -> dt.datetime:
        return self.starts_at + dt.timedelta(minutes=self.duration_minutes)


class Site(_Strict):
    id: Slug
    name: Name
    kind: Annotated[str, Field(min_length=1, max_length=40)]
    expected: Annotated[int, Field(gt=0)]
    capacity: Annotated[int, Field(gt=0)] | None = None
    group: Name | None = None
    endpoint: Name | None = None  # the display name or id its video endpoint uses on the bridge

    @model_validator(mode="after")
    def _capacity_fits(self) -> Site:
        if self.capacity is not None and self.capacity < self.expected:
            raise ValueError(f"capacity {self.capacity} is below expected {self.expected}")
        return self


class Category(_Strict):
    id: Slug
    name: Name


class Topic(_Strict):
    id: Slug
    name: Name


class Agency(_Strict):
    id: Slug
    name: Name
    short: Name | None = None


class ChecklistItem(_Strict):
    id: Annotated[str, Field(pattern=ITEM_ID)]
    name: Name
    required: bool = True


class AgendaItem(_Strict):
    id: Slug
    title: Name
    minutes: Annotated[int, Field(gt=0, le=24 * 60)]
    topic: Slug | None = None


class Heartbeat(_Strict):
    interval_seconds: Annotated[float, Field(gt=0, le=300)] = 5
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 15
    rtt_poor_ms: Annotated[float, Field(gt=0)] = 300
    store_every_seconds: Annotated[float, Field(gt=0)] = 60

    @model_validator(mode="after")
    def _timeout_above_interval(self) -> Heartbeat:
        if self.timeout_seconds <= self.interval_seconds:
            raise ValueError("timeout_seconds must be longer than interval_seconds")
        return self


class Limits(_Strict):
    max_frame_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    rate_per_second: Annotated[float, Field(gt=0)] = 20
    rate_burst: Annotated[int, Field(gt=0)] = 60
    send_queue_frames: Annotated[int, Field(ge=16)] = 512
    fanout_ms: Annotated[int, Field(ge=5, le=1000)] = 50


class Bridge(_Strict):
    kind: Literal["jitsi", "bbb"]
    url: Annotated[str, Field(pattern=WEB_URL)]
    room: str | None = None  # Jitsi room name, or BigBlueButton meeting id
    domain: str | None = None  # Jitsi XMPP domain, sent as Host and as ?domain=
    secret: str | None = None  # BigBlueButton shared secret
    checksum: Literal["sha1", "sha256", "sha384", "sha512"] = "sha1"  # BigBlueButton checksum hash
    token: str | None = None  # Jitsi room-size token, when verification is on
    health_url: str | None = None  # Jitsi Videobridge /colibri/stats or /about/health
    poll_seconds: Annotated[float, Field(gt=0)] = 5
    timeout_seconds: Annotated[float, Field(gt=0)] = 3

    @model_validator(mode="after")
    def _needs(self) -> Bridge:
        if not self.room:
            raise ValueError("room is required (the Jitsi room or BigBlueButton meeting id)")
        if self.kind == "bbb" and not self.secret:
            raise ValueError("secret is required for BigBlueButton")
        return self


class Deadlines(_Strict):
    collection: dt.date | None = None
    compilation: dt.date | None = None
    draft_answers: dt.date | None = None
    programme: dt.date | None = None
    written_answer_days: Annotated[int, Field(gt=0, le=365)] = 15


class Documents(_Strict):
    """Who issues the official documents (Decree 30/2020/NĐ-CP header, number and signature block)."""

    issuing_body: Name | None = None  # default: the event's organiser, e.g. "Ủy ban nhân dân tỉnh Kon Tum"
    parent_body: Name | None = None  # the line above the issuing body, when there is one
    place: Annotated[str, Field(max_length=100)] = ""  # the place-date line: "Kon Tum, ngày ..."
    number_prefix: Annotated[str, Field(min_length=1, max_length=40)] = "UBND"  # "Số: .../UBND-KGVX"
    # "Lưu: VT, KGVX": the drafting unit's abbreviation; default: what follows the "-" in number_prefix
    drafting_unit: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    authority: Name | None = None  # first line of the signature block: "TM. Ủy ban nhân dân", "KT. Chủ tịch"
    signer_title: Name = "Chủ tịch"
    signer_name: Name | None = None
    reply_to: Name | None = None  # who collects the written answers; default: the issuing body
    copy_to: list[Name] = []  # "Nơi nhận" lines after the addressee, before "Lưu: VT"


class Server(_Strict):
    allowed_origins: list[str] = []
    public_url: str | None = None  # what printed links start with, e.g. behind a proxy


class Config(_Strict):
    event: EventInfo
    sites: Annotated[list[Site], Field(min_length=1)]
    categories: Annotated[list[Category], Field(min_length=1)]
    topics: Annotated[list[Topic], Field(min_length=1)]
    agencies: list[Agency] = []
    checklist: list[ChecklistItem] = []
    agenda: list[AgendaItem] = []
    heartbeat: Heartbeat = Heartbeat()
    limits: Limits = Limits()
    bridge: Bridge | None = None
    deadlines: Deadlines = Deadlines()
    documents: Documents = Documents()
    server: Server = Server()

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        for section in ("sites", "categories", "topics", "agencies", "checklist", "agenda"):
            seen: set[str] = set()
            for index, item in enumerate(getattr(self, section)):
                if item.id in seen:
                    raise _KeyError(f"{section}[{index}].id", f"duplicate id {item.id!r}")
                seen.add(item.id)
        central = [i for i, s in enumerate(self.sites) if s.kind == "central"]
        if len(central) != 1:
            raise _KeyError("sites", f"exactly one site must have kind = \"central\", found {len(central)}")
        topics = {t.id for t in self.topics}
        for index, item in enumerate(self.agenda):
            if item.topic is not None and item.topic not in topics:
                raise _KeyError(f"agenda[{index}].topic", f"unknown topic {item.topic!r}")
        return self

    # Derived once: the config is frozen, and status checks read these on every heartbeat.
    @cached_property
    def site_ids(self) -> dict[str, Site]:
        return {s.id: s for s in self.sites}

    @cached_property
    def central(self) -> Site:
        return next(s for s in self.sites if s.kind == "central")

    @cached_property
    def expected_total(self) -> int:
        return sum(s.expected for s in self.sites)

    @cached_property
    def required_checks(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.checklist if c.required)

    @cached_property
    def item_ids(self) -> dict[str, frozenset[str]]:
        """The ids of each list that commands name items of, checked on every such command."""
        lists = {"checklist": self.checklist, "categories": self.categories, "topics": self.topics,
                 "agencies": self.agencies, "agenda": self.agenda}
        return {name: frozenset(item.id for item in items) for name, items in lists.items()}


class _KeyError(ValueError):
    """A cross-field problem that knows which key it belongs to."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raise ConfigError naming the key and line of the first problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> Config:
    """Validate TOML text as a Config."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, text, source)) from None


def _describe(exc: ValidationError, text: str, source: str) -> str:
    """One line per problem: file:line: key: message."""
    lines = []
    for error in exc.errors():
        ctx_error = (error.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _KeyError):
            key, message = ctx_error.key, ctx_error.message
        else:
            key = _dotted(error["loc"])
            message = _message(error)
        line = locate(text, key)
        where = f"{source}:{line}" if line else source
        lines.append(f"{where}: {key}: {message}")
    return "\n".join(lines)


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(error: dict) -> str:
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a known key" + _suggestion(error["loc"])
    hint = PATTERN_HINTS.get((error.get("ctx") or {}).get("pattern", ""))
    if error["type"] == "string_pattern_mismatch" and hint:
        return f"{error['input']!r} should be {hint}"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def _suggestion(loc: tuple[int | str, ...]) -> str:
    """For a key that is not known: the nearest known one of its section, else the section's keys."""
    section = _section(loc[:-1])
    if section is None:
        return ""
    known = list(section.model_fields)
    near = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f"; did you mean {near[0]}?" if near else f"; the keys here are {', '.join(known)}"


def _section(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that validates the table at `loc` (list indexes skipped): Config for the top level."""
    model: type[BaseModel] | None = Config
    for part in loc:
        if isinstance(part, str) and model is not None:
            field = model.model_fields.get(part)
            model = _model_in(field.annotation) if field else None
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: the annotation itself, or inside a list or an optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_model_in, typing.get_args(annotation))), None)


_KEY_PART = re.compile(r"([A-Za-z_][\w-]*)(?:\[(\d+)\])?")


def locate(text: str, key: str) -> int | None:
    """Best-effort line number of a dotted key such as `sites[3].expected` in TOML text."""
    parts = _KEY_PART.findall(key)
    if not parts:
        return None
    lines = text.splitlines()
    start, header = 0, ""
    table_line: int | None = None
    for name, index in parts:
        header = f"{header}.{name}" if header else name
        if index:
            found = _nth_header(lines, header, int(index), start, array=True)
            if found is None:
                return table_line
            start, table_line = found, found + 1
            header = ""
            continue
        table = _nth_header(lines, header, 0, start, array=False)
        if table is None:
            table = _nth_header(lines, header, 0, start, array=True)
        if table is not None:
            start, table_line, header = table, table + 1, ""
            continue
        assign = _assignment(lines, name, start)
        return assign + 1 if assign is not None else table_line
    return table_line


def _nth_header(lines: list[str], name: str, n: int, start: int, array: bool) -> int | None:
    pattern = re.compile(r"^\s*\[\[\s*%s\s*\]\]" % re.escape(name) if array else r"^\s*\[\s*%s\s*\]" % re.escape(name))
    seen = -1
    for number in range(start, len(lines)):
        if pattern.match(lines[number]):
            seen += 1
            if seen == n:
                return number
    return None


def _assignment(lines: list[str], name: str, start: int) -> int | None:
    pattern = re.compile(r"^\s*%s\s*=" % re.escape(name))
    for number in range(start, len(lines)):
        if number > start and lines[number].lstrip().startswith("["):
            return None
        if pattern.match(lines[number]):
            return number
    return None
