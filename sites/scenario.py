"""What a simulated meeting day does and when: a deterministic timeline of protocol commands.

`plan(config, sites, rng, questions, speed)` turns an event's config into steps on a scenario clock
(seconds from the start): technicians check in and tick their checklists, ready before the config's
readiness deadline, one hall loses sound and gets it back, registrars' counts climb to each hall's
expected figure, questions come from the floor and the moderator queues them, puts them on air, answers
them live or defers them to an agency, while the programme advances from rehearsal to live to closed.
The same seed gives the same day.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.config import Config, Site

MINUTE = 60.0
PRE_MARGIN_MINUTES = 10  # from the first check-in to the readiness deadline, which is before the opening
INCIDENT_SHOWN_SECONDS = 60.0  # real seconds the sound loss stays open at any speed, so a watcher sees it
CHECKIN_SPREAD = 3 * MINUTE
ATTENDANCE_STEPS = (0.15, 0.35, 0.55, 0.75, 0.9, 1.0)
CATEGORY_SHARES = {"workers": 0.5, "public-employees": 0.22, "union-officers": 0.1, "employers": 0.08,
                   "guests": 0.1}
AGENCY_TURNOUT = (("head", 0.7), ("deputy", 0.2), ("absent", 0.1))

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
          "Ngô", "Dương", "Lý")
MIDDLE = ("Văn", "Thị", "Hữu", "Minh", "Thanh", "Ngọc", "Quang", "Đức", "Thu", "Xuân")
GIVEN = ("An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Hương", "Lan", "Long", "Mai",
         "Nam", "Nga", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vân", "Yến")
HIGHLAND = ("A Thuận", "Y Hoa", "A Khoa", "Y Blông", "A Dũng", "Y Liên")  # names of the Central Highlands
UNITS = ("Công ty TNHH MTV {place}", "Trường Tiểu học {place}", "Công đoàn cơ sở {place}",
         "Hợp tác xã nông nghiệp {place}", "Trung tâm Y tế {place}", "Công ty Cổ phần Xây dựng {place}")

# Floor questions for configs without a questions file: templates matched on the topic's id or name.
TEMPLATES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("training", "đào tạo", "nhân lực", "giáo dục", "education"), (
        "Đề nghị hỗ trợ kinh phí đào tạo nghề cho lao động ở {place}, nhất là lao động nữ và người dân tộc thiểu số.",
        "Cơ sở đào tạo nghề ở {place} còn thiếu thiết bị thực hành; đề nghị có kế hoạch đầu tư trong năm tới.",
        "Đề nghị mở thêm lớp bồi dưỡng kỹ năng số cho người lao động ở {place}.",
    )),
    (("livelihood", "đời sống", "việc làm", "nhà ở", "thu nhập"), (
        "Nhiều công nhân ở {place} chưa có nhà ở ổn định; đề nghị đẩy nhanh dự án nhà ở xã hội.",
        "Thu nhập của người lao động ở {place} còn thấp so với giá cả sinh hoạt; đề nghị có giải pháp hỗ trợ.",
        "Đề nghị xây dựng nhà trẻ gần khu sản xuất ở {place} để con công nhân có nơi gửi.",
    )),
    (("policy", "chính sách", "chế độ"), (
        "Một số doanh nghiệp ở {place} chậm trả lương và nợ đóng bảo hiểm; đề nghị tăng cường kiểm tra, xử lý.",
        "Đề nghị hướng dẫn cụ thể chế độ phụ cấp cho người lao động làm việc ở vùng đặc biệt khó khăn như {place}.",
        "Người lao động nghỉ việc ở {place} còn vướng thủ tục hưởng trợ cấp thất nghiệp; đề nghị rút ngắn thời gian giải quyết.",
    )),
    (("procedures", "thủ tục", "hành chính", "bảo hiểm", "bhxh", "an ninh"), (
        "Thủ tục cấp lại thẻ bảo hiểm y tế ở {place} còn mất nhiều thời gian; đề nghị cải cách để người lao động đỡ đi lại.",
        "Đề nghị tăng cường tuần tra, bảo đảm an ninh trật tự quanh khu nhà trọ công nhân ở {place}.",
        "Đề nghị mở rộng dịch vụ công trực tuyến mức độ toàn trình cho người dân ở {place}.",
    )),
    (("union", "công đoàn", "đoàn viên"), (
        "Nhiều doanh nghiệp nhỏ ở {place} chưa thành lập công đoàn cơ sở; đề nghị có biện pháp vận động.",
        "Đề nghị tăng mức hỗ trợ đoàn viên công đoàn có hoàn cảnh khó khăn ở {place} dịp Tết.",
    )),
)
GENERIC = (
    "Về {topic}: đề nghị các cơ quan chức năng cho biết kế hoạch thực hiện trong năm tới ở {place}.",
    "Người dân ở {place} còn nhiều băn khoăn về {topic}; đề nghị có hướng dẫn cụ thể, dễ hiểu.",
    "Đề nghị tăng cường kiểm tra, tháo gỡ khó khăn về {topic} ở {place}.",
)


@dataclass(frozen=True)
class Ref:
    """A question id not known until the hub answers the `question.submit` that made it."""

    key: str


@dataclass(frozen=True)
class Step:
    """One command by one actor (`moderator`, `technician:<site>`, `registrar:<site>`) at scenario time `at`."""

    at: float
    actor: str
    type: str
    fields: dict[str, Any]
    say: str | None = None
    ref: str | None = None  # remember the submitted question's id under this key


@dataclass(frozen=True)
class FloorQuestion:
    topic: str
    site: str
    delegate: str
    unit: str
    text: str
    agency: str | None
    answer_note: str


@dataclass
class Plan:
    """The day's steps in order, and the figures they leave behind."""

    steps: list[Step] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)  # site -> people present at the end
    questions: int = 0
    ends_at: float = 0.0

    def add(self, step: Step) -> None:
        self.steps.append(step)


def person(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return rng.choice(HIGHLAND)
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def place(site: Site) -> str:
    """`Huyện Đắk Hà` reads `huyện Đắk Hà` inside a sentence."""
    first = site.name.split()[0]
    return site.name[0].lower() + site.name[1:] if first in ("Huyện", "Thành", "Thị", "Xã", "Phường") else site.name


def split_attendance(config: Config, expected: int, rng: random.Random) -> dict[str, int]:
    """A hall's expected people over the categories, summing exactly to `expected` (largest remainder)."""
    weights = {c.id: CATEGORY_SHARES.get(c.id, 0.1) * rng.uniform(0.8, 1.2) for c in config.categories}
    total = sum(weights.values())
    exact = {cid: expected * w / total for cid, w in weights.items()}
    counts = {cid: int(x) for cid, x in exact.items()}
    for cid in sorted(exact, key=lambda c: exact[c] - counts[c], reverse=True)[:expected - sum(counts.values())]:
        counts[cid] += 1
    return counts


def questions_file(config_path: Path) -> Path:
    """Pre-written questions sit next to the config: `<config stem>-questions.csv`."""
    return config_path.with_name(config_path.stem + "-questions.csv")


def read_questions(path: Path) -> list[FloorQuestion]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [FloorQuestion(r["topic"], r["site"], r["delegate"], r["unit"], r["text"], r.get("agency") or None,
                              r.get("answer_note") or "") for r in csv.DictReader(fh)]


def _agency_for(config: Config, keywords: tuple[str, ...], rng: random.Random) -> str | None:
    if not config.agencies:
        return None
    matching = [a.id for a in config.agencies if any(k in a.name.lower() for k in keywords)]
    return rng.choice(matching or [a.id for a in config.agencies])


def generate_questions(config: Config, sites: list[Site], rng: random.Random) -> list[FloorQuestion]:
    """Two or three plausible floor questions per hall, cycling through the topic groups."""
    out = []
    topics = config.topics
    for n, site in enumerate(sites):
        for k in range(rng.randint(2, 3)):
            topic = topics[(n + k) % len(topics)]
            label = f"{topic.id} {topic.name}".lower()
            keywords, texts = next(((kw, t) for kw, t in TEMPLATES if any(w in label for w in kw)), ((), GENERIC))
            text = rng.choice(texts).format(place=place(site), topic=topic.name[0].lower() + topic.name[1:])
            unit = rng.choice(UNITS).format(place=site.name.removeprefix("Huyện ").removeprefix("Xã "))
            out.append(FloorQuestion(topic.id, site.id, person(rng), unit, text,
                                     _agency_for(config, keywords, rng), ""))
    return out


@dataclass(frozen=True)
class Window:
    """Part of the live meeting in which a topic group is discussed."""

    start: float
    end: float


def _agenda_windows(config: Config, live: float) -> tuple[list[tuple[str, float]], dict[str | None, Window], float]:
    """The agenda items' start times, each topic's window (None: questions without one), and the end."""
    starts, windows, t = [], {}, live
    for item in config.agenda:
        starts.append((item.id, t))
        if item.topic:
            windows[item.topic] = Window(t, t + item.minutes * MINUTE)
        t += item.minutes * MINUTE
    end = t if config.agenda else live + config.event.duration_minutes * MINUTE
    topical = list(windows.values())
    windows[None] = Window(min((w.start for w in topical), default=live),
                           max((w.end for w in topical), default=end))
    return starts, windows, end


def plan(config: Config, sites: list[Site], rng: random.Random, questions: list[FloorQuestion],
         speed: float = 1.0) -> Plan:
    """The whole day for these sites, to be played at `speed`; every time is in scenario seconds from the start."""
    day = Plan()
    live = (config.event.readiness_deadline_minutes + PRE_MARGIN_MINUTES) * MINUTE
    starts, windows, end = _agenda_windows(config, live)
    day.add(Step(0, "moderator", "event.phase", {"phase": "rehearsal"}, "phase: rehearsal"))
    for site in sites:
        _technician(day, config, site, rng)
        _registrar(day, config, site, rng, live)
    _sound_loss(day, sites, rng, (live, end), speed)
    _agencies(day, config, rng, live)
    day.add(Step(live, "moderator", "event.phase", {"phase": "live"}, "phase: live, the meeting opens"))
    for item_id, at in starts:
        day.add(Step(at, "moderator", "agenda.advance", {"item": item_id}, f"agenda: {item_id}"))
    _questions(day, config, sites, rng, questions, windows, live)
    day.add(Step(end, "moderator", "event.phase", {"phase": "closed"}, "phase: closed, the meeting ends"))
    day.steps.sort(key=lambda s: s.at)  # stable: same-time steps keep their planned order
    day.ends_at = end
    return day


def _technician(day: Plan, config: Config, site: Site, rng: random.Random) -> None:
    actor = f"technician:{site.id}"
    t = rng.uniform(0, CHECKIN_SPREAD)
    name = person(rng)
    day.add(Step(t, actor, "site.checkin", {"site": site.id, "technician": name,
                                            "phone": f"09{rng.randrange(10**8):08d}"},
                 f"{site.name}: technician {name} checked in"))
    for item in config.checklist:
        t += rng.uniform(3, 20)
        day.add(Step(t, actor, "site.check", {"site": site.id, "item": item.id, "ok": True}))


def _registrar(day: Plan, config: Config, site: Site, rng: random.Random, live: float) -> None:
    final = split_attendance(config, site.expected, rng)
    day.expected[site.id] = site.expected
    t = rng.uniform(CHECKIN_SPREAD, 2 * CHECKIN_SPREAD)
    gap = (live - MINUTE - t) / len(ATTENDANCE_STEPS)
    for share in ATTENDANCE_STEPS:
        counts = {cid: round(n * share) for cid, n in final.items()}
        said = f"{site.name}: {sum(counts.values())} of {site.expected} present"
        for n, (cid, count) in enumerate(counts.items(), 1):
            day.add(Step(t, f"registrar:{site.id}", "attendance.set", {"site": site.id, "category": cid, "count": count},
                         said if n == len(counts) else None))
        t += gap * rng.uniform(0.7, 1.0)


def _sound_loss(day: Plan, sites: list[Site], rng: random.Random, meeting: tuple[float, float], speed: float) -> None:
    """One hall loses its sound early in the meeting and gets it back a few minutes later: at least
    INCIDENT_SHOWN_SECONDS of real time at this speed, so a watcher sees it, and before the meeting ends."""
    (live, end), site = meeting, rng.choice([s for s in sites if s.kind != "central"] or sites)
    actor, opened = f"technician:{site.id}", live + rng.uniform(8, 15) * MINUTE
    day.add(Step(opened, actor, "site.incident", {"site": site.id, "kind": "audio", "open": True,
                                                  "note": "Mất âm thanh: micro hội trường không lên tiếng"},
                 f"{site.name}: lost its sound (audio incident open)"))
    lasts = max(rng.uniform(2, 4) * MINUTE, INCIDENT_SHOWN_SECONDS * speed)
    day.add(Step(min(opened + lasts, end - MINUTE), actor, "site.incident",
                 {"site": site.id, "kind": "audio", "open": False, "note": "Đã khắc phục: thay bộ trộn âm thanh"},
                 f"{site.name}: sound is back (incident closed)"))


def _agencies(day: Plan, config: Config, rng: random.Random, live: float) -> None:
    for n, agency in enumerate(config.agencies):
        status = rng.choices([s for s, _ in AGENCY_TURNOUT], [w for _, w in AGENCY_TURNOUT])[0]
        fields: dict[str, Any] = {"agency": agency.id, "status": status}
        if status != "absent":
            fields["delegate"] = person(rng)
        fields["written_report"] = status == "deputy"
        day.add(Step(live - 10 * MINUTE + n * 20, "moderator", "agency.attendance", fields,
                     f"agency {agency.short or agency.name}: {status}"))


def _questions(day: Plan, config: Config, sites: list[Site], rng: random.Random, questions: list[FloorQuestion],
               windows: dict[str | None, Window], live: float) -> None:
    """Questions arrive before their topic's turn; the moderator takes some live and defers the rest."""
    active = {s.id: s for s in sites}
    by_window: dict[Window, list[tuple[float, str, FloorQuestion]]] = {}
    for n, q in enumerate(questions):
        site = active.get(q.site) or rng.choice(sites)  # a hall not simulated: its question comes from another
        window = windows.get(q.topic, windows[None])
        at = rng.uniform(live, window.start + (window.end - window.start) / 2)
        key = f"q{n}"
        fields = {"site": site.id, "delegate": {"name": q.delegate, "unit": q.unit}, "topic": q.topic,
                  "text": q.text, "wants_to_speak": rng.random() < 0.6}
        if q.agency:
            fields["agency"] = q.agency
        day.add(Step(at, f"registrar:{site.id}", "question.submit", fields,
                     f"{site.name}: question from {q.delegate} ({q.topic})", ref=key))
        day.add(Step(at + rng.uniform(20, 60), "moderator", "question.update",
                     {"question": Ref(key), "status": "queued"}))
        by_window.setdefault(window, []).append((at, key, q))
        day.questions += 1
    for window, items in by_window.items():
        _moderate(day, config, window, sorted(items, key=lambda i: i[0]), rng)


def _moderate(day: Plan, config: Config, window: Window, items: list[tuple[float, str, FloorQuestion]],
              rng: random.Random) -> None:
    live_count = max(1, min(len(items), int((window.end - window.start) / (8 * MINUTE))))
    slot = (window.end - window.start - 2 * MINUTE) / live_count
    t = window.start + MINUTE
    fallback = config.agencies[0].id if config.agencies else None
    for at, key, q in items[:live_count]:
        t = max(t, at + 90)
        day.add(Step(t, "moderator", "question.update", {"question": Ref(key), "status": "on_air"},
                     f"on air: {q.delegate} ({q.topic})"))
        t += slot * rng.uniform(0.6, 0.9)
        note = q.answer_note or "Lãnh đạo cơ quan chuyên môn trả lời trực tiếp tại Hội nghị."
        day.add(Step(t, "moderator", "question.update", {"question": Ref(key), "status": "answered", "answer_note": note},
                     "answered live"))
    for _, key, q in items[live_count:]:
        agency = q.agency or fallback
        if agency is None:
            continue
        day.add(Step(max(t, window.end - 30), "moderator", "question.update",
                     {"question": Ref(key), "status": "deferred", "agency": agency},
                     f"deferred to {agency} for a written answer"))
