"""The report model laid out as titled tables, in Vietnamese or English: what HTML, XLSX and CSV all print.

Cells are typed Python values (int, float, datetime in the event's time zone, date, str, None), so
the workbook keeps numbers as numbers and times as times, and no form formats a figure of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hub.report.build import OUTCOMES

LANGS = ("vi", "en")

TEXT: dict[str, dict[str, str]] = {
    "vi": {
        "report": "Báo cáo kết quả Hội nghị", "summary": "Tổng quan", "item": "Chỉ tiêu", "value": "Giá trị",
        "title": "Hội nghị", "organiser": "Cơ quan tổ chức", "venue": "Địa điểm", "date": "Ngày",
        "planned_start": "Giờ bắt đầu (kế hoạch)", "planned_end": "Giờ kết thúc (kế hoạch)",
        "live_started": "Bắt đầu trực tuyến (thực tế)", "live_ended": "Kết thúc (thực tế)",
        "sites": "Số điểm cầu", "checked_in": "Điểm cầu đã nhận ca kỹ thuật",
        "ready_by_deadline": "Sẵn sàng trước hạn kiểm tra kỹ thuật", "ready_by_start": "Sẵn sàng trước giờ khai mạc",
        "never_ready": "Chưa lúc nào sẵn sàng", "incidents": "Sự cố", "downtime": "Gián đoạn khi đang trực tuyến (phút)",
        "expected": "Dự kiến", "present": "Có mặt", "percent": "Tỷ lệ (%)", "peak": "Cao nhất", "peak_at": "Lúc cao nhất",
        "expected_people": "Đại biểu dự kiến", "present_people": "Đại biểu có mặt (cuối Hội nghị)",
        "peak_people": "Đại biểu có mặt cao nhất", "questions": "Câu hỏi, ý kiến", "written_received":
        "Trả lời bằng văn bản đã nhận", "written_due": "Còn phải trả lời bằng văn bản",
        "phases": "Các giai đoạn", "phase": "Giai đoạn", "at": "Thời điểm",
        "attendance": "Điểm danh theo điểm cầu", "site_id": "Mã", "site": "Điểm cầu", "kind": "Loại", "group": "Nhóm",
        "total": "Tổng cộng", "categories": "Điểm danh theo thành phần", "category": "Thành phần",
        "agencies": "Thành phần cơ quan dự", "agency": "Cơ quan", "attendance_status": "Tình trạng",
        "delegate_name": "Người dự", "written_report": "Có báo cáo bằng văn bản", "recorded_at": "Ghi nhận lúc",
        "readiness": "Sẵn sàng kỹ thuật theo điểm cầu", "technician": "Kỹ thuật viên", "checkin": "Nhận ca",
        "first_ready": "Sẵn sàng lần đầu", "lead": "Sớm hơn giờ khai mạc (phút)", "by_deadline": "Đúng hạn",
        "final_status": "Trạng thái cuối", "incident_list": "Sự cố kỹ thuật", "incident_kind": "Loại sự cố",
        "note": "Ghi chú", "opened": "Bắt đầu", "closed": "Kết thúc", "duration": "Thời lượng (phút)",
        "live_minutes": "Trong lúc trực tuyến (phút)", "still_open": "Chưa khắc phục",
        "by_topic": "Câu hỏi theo nhóm vấn đề", "topic": "Nhóm vấn đề", "by_site": "Câu hỏi theo điểm cầu",
        "question_list": "Danh sách câu hỏi, ý kiến", "id": "Mã", "delegate": "Đại biểu", "unit": "Đơn vị",
        "text": "Nội dung", "origin": "Hình thức", "answering": "Cơ quan trả lời", "outcome": "Kết quả",
        "spoken": "Thời gian trả lời trực tiếp (phút)", "due": "Hạn trả lời", "written": "Trả lời bằng văn bản",
        "count": "Số câu", "received": "Đã trả lời", "still_due": "Còn phải trả lời",
        "deferred_for": "Câu hỏi chuyển {agency} trả lời bằng văn bản", "no": "STT", "answered_at": "Nhận trả lời lúc",
        "reference": "Số văn bản", "answer_date": "Ngày văn bản",
        "deferred_note": "Đề nghị {agency} trả lời bằng văn bản cho người hỏi và gửi về Ban tổ chức trước ngày {due}.",
        "agenda": "Chương trình: kế hoạch và thực tế", "agenda_item": "Nội dung chương trình",
        "planned_minutes": "Dự kiến (phút)", "started": "Bắt đầu thực tế", "ended": "Kết thúc thực tế",
        "actual_minutes": "Thực tế (phút)", "difference": "Chênh lệch (phút)",
        "timeline": "Diễn biến điểm danh và điểm cầu sẵn sàng", "sites_ready": "Điểm cầu sẵn sàng",
        "yes": "Có", "no_": "Không", "unassigned": "(chưa giao cơ quan)", "as_of": "Số liệu đến",
        "events": "sự kiện đã ghi", "print": "In báo cáo", "download": "Tải về", "other_lang": "English",
        "chart_present": "Đại biểu có mặt", "chart_ready": "Điểm cầu sẵn sàng", "chart_title": "Diễn biến theo thời gian",
        "head_agencies": "Cơ quan: thủ trưởng dự", "deputy_agencies": "Cơ quan: cấp phó dự",
        "absent_agencies": "Cơ quan vắng mặt", "report_agencies": "Cơ quan có báo cáo bằng văn bản",
        "sheet_summary": "Tổng quan", "sheet_phases": "Giai đoạn", "sheet_attendance": "Điểm danh",
        "sheet_categories": "Thành phần", "sheet_agencies": "Cơ quan dự", "sheet_readiness": "Sẵn sàng",
        "sheet_incidents": "Sự cố", "sheet_topics": "Câu hỏi theo nhóm", "sheet_sites": "Câu hỏi theo điểm cầu",
        "sheet_questions": "Danh sách câu hỏi", "sheet_written": "Trả lời văn bản", "sheet_agenda": "Chương trình",
        "sheet_timeline": "Diễn biến", "page_of": "Trang {page}/{pages}",
    },
    "en": {
        "report": "Conference report", "summary": "Summary", "item": "Item", "value": "Value",
        "title": "Conference", "organiser": "Organiser", "venue": "Venue", "date": "Date",
        "planned_start": "Planned start", "planned_end": "Planned end", "live_started": "Went live",
        "live_ended": "Closed", "sites": "Connection points", "checked_in": "Points checked in",
        "ready_by_deadline": "Ready by the readiness deadline", "ready_by_start": "Ready by the start",
        "never_ready": "Never ready", "incidents": "Incidents", "downtime": "Downtime while live (minutes)",
        "expected": "Expected", "present": "Present", "percent": "Share (%)", "peak": "Peak", "peak_at": "Peak at",
        "expected_people": "Delegates expected", "present_people": "Delegates present (at the end)",
        "peak_people": "Delegates present at the peak", "questions": "Questions and recommendations",
        "written_received": "Written answers received", "written_due": "Written answers still due",
        "phases": "Phases", "phase": "Phase", "at": "Time",
        "attendance": "Attendance per connection point", "site_id": "Id", "site": "Connection point", "kind": "Kind",
        "group": "Group", "total": "Total", "categories": "Attendance per category", "category": "Category",
        "agencies": "Agency attendance", "agency": "Agency", "attendance_status": "Attendance",
        "delegate_name": "Attended by", "written_report": "Written report", "recorded_at": "Recorded at",
        "readiness": "Technical readiness per connection point", "technician": "Technician", "checkin": "Checked in",
        "first_ready": "First ready", "lead": "Ahead of the start (minutes)", "by_deadline": "On time",
        "final_status": "Final status", "incident_list": "Technical incidents", "incident_kind": "Kind",
        "note": "Note", "opened": "Opened", "closed": "Closed", "duration": "Duration (minutes)",
        "live_minutes": "While live (minutes)", "still_open": "Still open",
        "by_topic": "Questions per topic group", "topic": "Topic group", "by_site": "Questions per connection point",
        "question_list": "All questions and recommendations", "id": "Id", "delegate": "Delegate", "unit": "Unit",
        "text": "Question", "origin": "Form", "answering": "Answering agency", "outcome": "Outcome",
        "spoken": "Answered live (minutes)", "due": "Due", "written": "Written answers",
        "count": "Questions", "received": "Answered", "still_due": "Still due",
        "deferred_for": "Questions for {agency} to answer in writing", "no": "No.", "answered_at": "Answer received",
        "reference": "Document number", "answer_date": "Document date",
        "deferred_note": "{agency} is asked to answer in writing and send the answers to the organisers by {due}.",
        "agenda": "Programme: planned and actual", "agenda_item": "Programme item", "planned_minutes": "Planned (minutes)",
        "started": "Started", "ended": "Ended", "actual_minutes": "Actual (minutes)", "difference": "Difference (minutes)",
        "timeline": "Attendance and points ready over time", "sites_ready": "Points ready",
        "yes": "Yes", "no_": "No", "unassigned": "(no agency assigned)", "as_of": "Figures as of",
        "events": "stored events", "print": "Print", "download": "Download", "other_lang": "Tiếng Việt",
        "chart_present": "Delegates present", "chart_ready": "Points ready", "chart_title": "Over time",
        "head_agencies": "Agencies: head attended", "deputy_agencies": "Agencies: deputy attended",
        "absent_agencies": "Agencies absent", "report_agencies": "Agencies with a written report",
        "sheet_summary": "Summary", "sheet_phases": "Phases", "sheet_attendance": "Attendance",
        "sheet_categories": "Categories", "sheet_agencies": "Agencies", "sheet_readiness": "Readiness",
        "sheet_incidents": "Incidents", "sheet_topics": "Questions per topic", "sheet_sites": "Questions per point",
        "sheet_questions": "Questions", "sheet_written": "Written answers", "sheet_agenda": "Programme",
        "sheet_timeline": "Timeline", "page_of": "Page {page} of {pages}",
    },
}

VALUES: dict[str, dict[str, str]] = {
    "vi": {
        "answered": "Đã trả lời trực tiếp", "deferred": "Chuyển trả lời bằng văn bản",
        "answered_written": "Đã trả lời bằng văn bản", "rejected": "Không tiếp nhận", "merged": "Đã gộp",
        "open": "Chưa xử lý", "head": "Thủ trưởng dự", "deputy": "Cấp phó dự", "absent": "Vắng mặt",
        "unrecorded": "Chưa ghi nhận", "setup": "Chuẩn bị", "rehearsal": "Tổng duyệt", "live": "Trực tuyến",
        "closed": "Kết thúc", "offline": "Mất kết nối", "checking": "Đang kiểm tra", "ready": "Sẵn sàng",
        "degraded": "Có sự cố", "lost": "Mất tín hiệu", "audio": "Âm thanh", "video": "Hình ảnh",
        "network": "Đường truyền", "power": "Điện", "other": "Khác", "pre": "Gửi trước Hội nghị",
        "floor": "Tại Hội nghị", "submitted": "Mới gửi", "queued": "Chờ trả lời", "on_air": "Đang trả lời",
    },
    "en": {
        "answered": "Answered live", "deferred": "Deferred to writing", "answered_written": "Answered in writing",
        "rejected": "Rejected", "merged": "Merged", "open": "Not dealt with", "head": "Head attended",
        "deputy": "Deputy attended", "absent": "Absent", "unrecorded": "Not recorded", "setup": "Setup",
        "rehearsal": "Rehearsal", "live": "Live", "closed": "Closed", "offline": "Offline", "checking": "Checking",
        "ready": "Ready", "degraded": "Degraded", "lost": "Lost", "audio": "Audio", "video": "Video",
        "network": "Network", "power": "Power", "other": "Other", "pre": "Before the day", "floor": "From the floor",
        "submitted": "Submitted", "queued": "Queued", "on_air": "On air",
    },
}

# Site kinds the configuration documents; any other kind is the config's own label and is shown as given.
SITE_KINDS: dict[str, dict[str, str]] = {
    "vi": {"central": "Trung tâm", "province": "Tỉnh", "city": "Thành phố", "town": "Thị xã", "district": "Huyện",
           "commune": "Xã", "ward": "Phường", "township": "Thị trấn"},
    "en": {"central": "Central", "province": "Province", "city": "City", "town": "Town", "district": "District",
           "commune": "Commune", "ward": "Ward", "township": "Township"},
}


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    kind: str = "text"  # text, long (wrapped prose), int, float, datetime, date, any
    width: int = 14


@dataclass(slots=True)
class Table:
    """One section of the report: a title, typed columns and rows, and the workbook tab it goes on."""

    key: str
    title: str
    sheet: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    note: str | None = None
    totals: bool = False  # the last row sums the others


def when(value: str | None) -> dt.datetime | None:
    """An ISO time from the model as a datetime in the event's time zone."""
    return dt.datetime.fromisoformat(value) if value else None


def day(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


class Layout:
    """Builds every table of one report in one language."""

    def __init__(self, model: dict[str, Any], lang: str) -> None:
        if lang not in LANGS:
            raise ValueError(f"unknown language {lang!r}; use vi or en")
        self.m, self.lang, self.text, self.values = model, lang, TEXT[lang], VALUES[lang]

    def __call__(self, key: str, **fields: str) -> str:
        return self.text[key].format(**fields) if fields else self.text[key]

    def v(self, value: str | None) -> str | None:
        return None if value is None else self.values.get(value, value)

    def yes(self, flag: bool) -> str:
        return self("yes") if flag else self("no_")

    def col(self, key: str, kind: str = "text", width: int = 14) -> Column:
        return Column(self(key), kind, width)

    def table(self, key: str, columns: list[Column], rows: list[list[Any]], **extra: Any) -> Table:
        title = extra.pop("title", None) or self(key)
        sheet = extra.pop("sheet", None) or self(f"sheet_{key}")
        return Table(key, title, sheet, columns, rows, **extra)

    def tables(self) -> list[Table]:
        return [self.summary(), self.phases(), self.attendance(), self.categories(), self.agencies(),
                self.readiness(), self.incidents(), self.by_topic(), self.by_site(), self.questions(),
                self.written(), *self.deferred(), self.agenda(), self.timeline()]

    def summary(self) -> Table:
        e, t = self.m["event"], self.m["totals"]
        rows: list[list[Any]] = [
            [self("title"), e["title"]], [self("organiser"), e["organiser"]], [self("venue"), e["venue"]],
            [self("date"), day(e["session_date"])], [self("planned_start"), when(e["session_starts_at"])],
            [self("planned_end"), when(e["session_ends_at"])], [self("live_started"), when(e["live_started"])],
            [self("live_ended"), when(e["live_ended"])], [self("sites"), t["sites"]],
            [self("checked_in"), t["checked_in"]], [self("ready_by_deadline"), t["ready_by_deadline"]],
            [self("ready_by_start"), t["ready_by_start"]], [self("never_ready"), t["never_ready"]],
            [self("incidents"), t["incidents"]], [self("downtime"), t["downtime_minutes"]],
            [self("expected_people"), t["expected"]], [self("present_people"), t["present"]],
            [self("percent"), t["percent"]], [self("peak_people"), t["peak"]], [self("peak_at"), when(t["peak_at"])],
            [self("questions"), t["questions"]],
            *[[self.v(o), t["outcomes"][o]] for o in OUTCOMES],
            [self("written_received"), t["written_received"]], [self("written_due"), t["written_due"]],
            [self("head_agencies"), t["agencies"]["head"]], [self("deputy_agencies"), t["agencies"]["deputy"]],
            [self("absent_agencies"), t["agencies"]["absent"]], [self("report_agencies"), t["agencies"]["with_report"]],
        ]
        return self.table("summary", [self.col("item", width=44), self.col("value", "any", 60)], rows)

    def phases(self) -> Table:
        rows = [[self.v(p["phase"]), when(p["at"])] for p in self.m["event"]["phase_history"]]
        return self.table("phases", [self.col("phase", width=20), self.col("at", "datetime", 20)], rows)

    def attendance(self) -> Table:
        cats = self.m["attendance"]["categories"]
        columns = [self.col("site_id", width=14), self.col("site", width=36), self.col("kind", width=10),
                   self.col("expected", "int", 10), self.col("present", "int", 10), self.col("percent", "float", 9),
                   self.col("peak", "int", 10), self.col("peak_at", "datetime", 20),
                   *[Column(c["name"], "int", 14) for c in cats]]
        kinds = SITE_KINDS[self.lang]
        rows = [[s["site"], s["name"], kinds.get(s["kind"], s["kind"]), s["expected"], s["present"], s["percent"],
                 s["peak"], when(s["peak_at"]), *[s["by_category"][c["category"]] for c in cats]]
                for s in self.m["attendance"]["sites"]]
        t = self.m["totals"]
        rows.append(["", self("total"), "", t["expected"], t["present"], t["percent"], t["peak"], when(t["peak_at"]),
                     *[c["present"] for c in cats]])
        return self.table("attendance", columns, rows, totals=True)

    def categories(self) -> Table:
        columns = [self.col("category", width=40), self.col("present", "int", 10), self.col("peak", "int", 10),
                   self.col("peak_at", "datetime", 18)]
        rows = [[c["name"], c["present"], c["peak"], when(c["peak_at"])] for c in self.m["attendance"]["categories"]]
        return self.table("categories", columns, rows)

    def agencies(self) -> Table:
        columns = [self.col("agency", width=40), self.col("attendance_status", width=18),
                   self.col("delegate_name", width=24), self.col("written_report", width=12),
                   self.col("recorded_at", "datetime", 18)]
        rows = [[a["name"], self.v(a["status"]), a["delegate"], self.yes(a["written_report"]), when(a["at"])]
                for a in self.m["agencies"]["rows"]]
        return self.table("agencies", columns, rows)

    def readiness(self) -> Table:
        columns = [self.col("site_id"), self.col("site", width=36), self.col("technician", width=20),
                   self.col("checkin", "datetime", 18), self.col("first_ready", "datetime", 18),
                   self.col("lead", "float", 12), self.col("by_deadline", width=10), self.col("incidents", "int", 9),
                   self.col("downtime", "float", 14), self.col("final_status", width=16)]
        rows = [[r["site"], r["name"], r["technician"], when(r["checked_in"]), when(r["first_ready"]),
                 r["lead_minutes"], self.yes(r["by_deadline"]), r["incidents"], r["downtime_minutes"], self.v(r["status"])]
                for r in self.m["readiness"]]
        return self.table("readiness", columns, rows)

    def incidents(self) -> Table:
        columns = [self.col("site", width=30), self.col("incident_kind", width=14), self.col("note", "long", 36),
                   self.col("opened", "datetime", 18), self.col("closed", "datetime", 18),
                   self.col("duration", "float", 12), self.col("live_minutes", "float", 12),
                   self.col("still_open", width=10)]
        rows = [[i["name"], self.v(i["kind"]), i["note"], when(i["opened"]), when(i["closed"]), i["minutes"],
                 i["live_minutes"], self.yes(i["open"])] for i in self.m["incidents"]]
        return self.table("incident_list", columns, rows, sheet=self("sheet_incidents"))

    def _outcome_table(self, key: str, name_key: str, groups: list[dict[str, Any]], sheet: str) -> Table:
        columns = [self.col(name_key, width=44), self.col("total", "int", 9),
                   *[Column(self.v(o) or o, "int", 12) for o in OUTCOMES]]
        rows = [[g["name"], g["total"], *[g["outcomes"][o] for o in OUTCOMES]] for g in groups]
        t = self.m["questions"]["totals"]
        rows.append([self("total"), t["total"], *[t["outcomes"][o] for o in OUTCOMES]])
        return self.table(key, columns, rows, sheet=self(sheet), totals=True)

    def by_topic(self) -> Table:
        return self._outcome_table("by_topic", "topic", self.m["questions"]["by_topic"], "sheet_topics")

    def by_site(self) -> Table:
        return self._outcome_table("by_site", "site", self.m["questions"]["by_site"], "sheet_sites")

    def questions(self) -> Table:
        columns = [self.col("id", width=8), self.col("site", width=22), self.col("delegate", width=22),
                   self.col("unit", width=26), self.col("topic", width=26), self.col("text", "long", 60),
                   self.col("origin", width=14), self.col("answering", width=26), self.col("outcome", width=20),
                   self.col("spoken", "float", 12), self.col("due", "date", 12)]
        rows = [[q["id"], q["site_name"], q["delegate"], q["unit"], q["topic_name"], q["text"], self.v(q["origin"]),
                 q["agency_name"], self.v(q["outcome"]), q["spoken_minutes"] or None, day(q["due"])]
                for q in self.m["questions"]["rows"]]
        return self.table("question_list", columns, rows, sheet=self("sheet_questions"))

    def written(self) -> Table:
        columns = [self.col("agency", width=40), self.col("count", "int", 9), self.col("received", "int", 11),
                   self.col("still_due", "int", 11), self.col("due", "date", 12)]
        rows = [[g["name"] or self("unassigned"), g["count"], g["received"], g["still_due"], day(g["due"])]
                for g in self.m["written"]["rows"]]
        w = self.m["written"]
        rows.append([self("total"), w["total"], w["received"], w["still_due"], None])
        return self.table("written", columns, rows, totals=True)

    def deferred(self) -> list[Table]:
        """One table per answering agency: the list that goes out to it for written answers."""
        columns = [self.col("no", "int", 5), self.col("id", width=8), self.col("site", width=22),
                   self.col("delegate", width=22), self.col("unit", width=26), self.col("topic", width=26),
                   self.col("text", "long", 60), self.col("due", "date", 12), self.col("answered_at", "datetime", 18),
                   self.col("reference", width=16), self.col("answer_date", "date", 12)]
        out = []
        for group in self.m["deferred"]:
            name = group["name"] or self("unassigned")
            rows = [[n, q["id"], q["site_name"], q["delegate"], q["unit"], q["topic_name"], q["text"], day(q["due"]),
                     when(q["written_at"]), q["reference"], day(q["answer_date"])]
                    for n, q in enumerate(group["questions"], 1)]
            due = day(group["due"])
            note = self("deferred_note", agency=name, due=f"{due:%d/%m/%Y}") if due else None
            out.append(self.table("deferred", columns, rows, title=self("deferred_for", agency=name),
                                  sheet=group["short"] or name, note=note))
        return out

    def agenda(self) -> Table:
        columns = [self.col("agenda_item", "long", 44), self.col("planned_start", "datetime", 18),
                   self.col("planned_end", "datetime", 18), self.col("planned_minutes", "int", 11),
                   self.col("started", "datetime", 18), self.col("ended", "datetime", 18),
                   self.col("actual_minutes", "float", 11), self.col("difference", "float", 11)]
        rows = [[a["title"], when(a["planned_start"]), when(a["planned_end"]), a["minutes"], when(a["started"]),
                 when(a["ended"]), a["actual_minutes"], a["difference_minutes"]] for a in self.m["agenda"]]
        return self.table("agenda", columns, rows)

    def timeline(self) -> Table:
        columns = [self.col("at", "datetime", 20), self.col("present", "int", 12), self.col("sites_ready", "int", 16)]
        rows = [[when(p["at"]), p["present"], p["sites_ready"]] for p in self.m["timeline"]]
        return self.table("timeline", columns, rows)


def layout(model: dict[str, Any], lang: str = "vi") -> list[Table]:
    """Every table of the report, in order, in one language."""
    return Layout(model, lang).tables()
