"""Official documents from the log: a letter per agency forwarding its deferred questions, and the summary report.

Every figure comes from the report model (`hub.report.build_report`, one fold of the event log), the
same data the report's JSON, HTML, XLSX and CSV forms render, so a document cannot disagree with
them. Rendering is slow, so the hub runs it in a thread; the same code serves `diemcau documents` and
the moderator's download.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

from hub.config import Config
from hub.documents.official import Issuer, closing, grid, header, line, new_document, para, title, to_bytes, vn_date
from hub.report.formats import CellFormat

REPORT_NAME = "bao-cao-ket-qua.docx"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ATTENDANCE = {"head": "Thủ trưởng dự", "deputy": "Cấp phó dự", "absent": "Vắng"}
NO_AGENCY = "Chưa giao cơ quan trả lời"
VIETNAMESE = CellFormat("vi", dt.date.min)  # numbers only: its date decides how datetimes print, never given here

Report = dict[str, Any]


def letter_name(agency: str) -> str:
    return f"cong-van-{agency}.docx"


def in_writing(report: Report) -> dict[str | None, list[dict[str, Any]]]:
    """Each answering agency's questions to answer in writing (deferred, or already answered so)."""
    return {g["agency"]: g["questions"] for g in report["deferred"]}


def catalogue(config: Config, report: Report) -> list[dict[str, str]]:
    """The documents this report gives: name and title, the report first."""
    docs = [{"name": REPORT_NAME, "title": f"Báo cáo kết quả tổ chức {config.event.title}"}]
    letters = in_writing(report)
    for agency in config.agencies:
        if letters.get(agency.id):
            docs.append({"name": letter_name(agency.id), "title": f"Công văn gửi {agency.name}"})
    return docs


def held_on(report: Report) -> dt.date:
    """The day this run of the meeting was held (`hub/core/schedule.py`): what the documents date the meeting."""
    return dt.date.fromisoformat(report["event"]["session_date"])


def num(value: float) -> str:
    """2.300 and 3,9: Vietnamese thousands and decimal marks, as the report's printed page writes them."""
    return VIETNAMESE(value)


def render(config: Config, report: Report, day: dt.date) -> dict[str, bytes]:
    """Every document as .docx bytes, by file name."""
    return {d["name"]: render_one(config, report, d["name"], day) for d in catalogue(config, report)}


def render_one(config: Config, report: Report, name: str, day: dt.date) -> bytes:
    """One document (a name from `catalogue`) as .docx bytes."""
    if name == REPORT_NAME:
        return report_document(config, report, day)
    agency = name.removeprefix("cong-van-").removesuffix(".docx")
    return letter_document(config, agency, in_writing(report)[agency], day, held_on(report))


# -- the letter to an agency ------------------------------------------------------------------------


def letter_document(config: Config, agency_id: str, questions: Sequence[dict[str, Any]], day: dt.date,
                    held: dt.date) -> bytes:
    """Công văn: forwards an agency's deferred questions (report rows) and asks for written answers by their due date."""
    issuer = Issuer.from_config(config)
    agency = next(a for a in config.agencies if a.id == agency_id)
    ev = config.event
    doc = new_document(f"Công văn gửi {agency.name}", ev.organiser)
    header(doc, issuer, issuer.number_prefix, day,
           summary="trả lời bằng văn bản ý kiến, kiến nghị của người lao động tại Hội nghị")
    line(doc, "")
    line(doc, f"Kính gửi: {agency.name}.")
    line(doc, "")
    due = min((q["due"] for q in questions if q["due"]), default=None)
    venue = f" tại {ev.venue}" if ev.venue else ""
    para(doc, f"{vn_date(held).capitalize()}, {issuer.body} đã tổ chức {ev.title}{venue}. Tại Hội nghị, "
              f"một số ý kiến, kiến nghị của công nhân, viên chức, người lao động thuộc chức năng, nhiệm vụ "
              f"của {agency.name} chưa được trả lời trực tiếp.")
    by_date = f" trước {vn_date(dt.date.fromisoformat(due))}" if due else ""
    para(doc, f"{issuer.body} chuyển {agency.name} {len(questions)} ý kiến, kiến nghị (danh sách dưới đây), "
              f"đề nghị nghiên cứu, trả lời bằng văn bản cho người lao động{_send_on(issuer, agency.name, by_date)}.")
    rows = [(index, q["site_name"], _askers(q), q["unit"], q["text"], _date(q["due"]))
            for index, q in enumerate(questions, 1)]
    grid(doc, ("STT", "Điểm cầu", "Đại biểu", "Đơn vị", "Nội dung ý kiến, kiến nghị", "Hạn trả lời"), rows,
         (13, 24, 25, 26, 50, 27), size=11, centred=(0, 5))
    para(doc, f"Đề nghị {agency.name} quan tâm, thực hiện./.")
    closing(doc, issuer, ["Như trên", *(c for c in issuer.copy_to if not _names(c, agency.name))])
    return to_bytes(doc)


def _names(line: str, body: str) -> bool:
    """Whether a config line ("Liên đoàn Lao động tỉnh", "… (b/c)") names this body."""
    return line.split(" (")[0].strip(" ;.").casefold() == body.casefold()


def _send_on(issuer: Issuer, addressee: str, by_date: str) -> str:
    """Where the written answers go: to the collector (`reply_to`), or, when the letter is to the collector
    itself, into its summary for the issuing body."""
    if _names(issuer.reply_to, addressee):
        return (f"{by_date}, đồng thời tổng hợp kết quả trả lời của các cơ quan, đơn vị, báo cáo {issuer.body} "
                f"theo quy định")
    return f", đồng thời gửi về {issuer.reply_to}{by_date} để tổng hợp, báo cáo theo quy định"


def _askers(q: dict[str, Any]) -> str:
    """The delegate, then anyone whose same question was merged into this one."""
    return "; ".join([q["delegate"], *(f"{a['name']} ({a['site_name']})" for a in q["co_askers"])])


def _date(iso: str | None) -> str:
    return dt.date.fromisoformat(iso[:10]).strftime("%d/%m/%Y") if iso else ""


def _clock(iso: str | None) -> str:
    return iso[11:16] if iso else "—"


# -- the summary report -----------------------------------------------------------------------------


def report_document(config: Config, report: Report, day: dt.date) -> bytes:
    """Báo cáo: attendance, questions by topic group and outcome, agencies present, the programme, written answers."""
    issuer = Issuer.from_config(config)
    ev = config.event
    doc = new_document(f"Báo cáo kết quả tổ chức {ev.title}", ev.organiser)
    header(doc, issuer, f"BC-{issuer.number_prefix.split('-')[0]}", day)
    title(doc, "Báo cáo", f"Kết quả tổ chức {ev.title}")
    para(doc, f"{vn_date(held_on(report)).capitalize()}, {issuer.body} tổ chức {ev.title} theo hình thức trực tiếp "
              f"kết hợp trực tuyến tại {report['totals']['sites']} điểm cầu. {issuer.body} báo cáo kết quả như sau:")
    _attendance(doc, report)
    _questions(doc, report)
    _agencies(doc, report)
    _programme(doc, report)
    _written(doc, report)
    para(doc, f"Trên đây là báo cáo kết quả tổ chức Hội nghị của {issuer.body}./.")
    closing(doc, issuer, issuer.copy_to)
    return to_bytes(doc)


def _attendance(doc: Any, report: Report) -> None:
    totals = report["totals"]
    present, expected, share = totals["present"], totals["expected"], totals["percent"]
    share_text = f" (đạt {num(share)}%)" if share is not None else ""
    para(doc, "I. THÀNH PHẦN, SỐ LƯỢNG ĐẠI BIỂU THAM DỰ", bold=True)
    para(doc, f"Tổng số đại biểu tham dự: {num(present)}/{num(expected)} đại biểu dự kiến{share_text} "
              f"tại {totals['sites']} điểm cầu; trong đó:")
    for category in report["attendance"]["categories"]:
        para(doc, f"- {category['name']}: {num(category['present'])} người;")
    rows = [(i, s["name"], num(s["expected"]), num(s["present"]), num(s["peak"]))
            for i, s in enumerate(report["attendance"]["sites"], 1)]
    rows.append(("", "Tổng cộng", num(expected), num(present), ""))
    grid(doc, ("STT", "Điểm cầu", "Dự kiến", "Có mặt", "Cao nhất"), rows, (13, 84, 22, 22, 24), centred=(0, 2, 3, 4))


def outcome_columns(group: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """A report outcome group as the document's columns: total, answered at the meeting, sent for written
    answers, written answers received, and the rest (merged, rejected, not dealt with)."""
    o = group["outcomes"]
    writing = o["deferred"] + o["answered_written"]
    return group["total"], o["answered"], writing, o["answered_written"], group["total"] - o["answered"] - writing


def _questions(doc: Any, report: Report) -> None:
    questions = report["questions"]
    total, live, writing, written, other = outcome_columns(questions["totals"])
    pre = sum(q["origin"] == "pre" for q in questions["rows"])
    para(doc, "II. KẾT QUẢ ĐỐI THOẠI", bold=True)
    para(doc, f"Hội nghị nhận {num(total)} ý kiến, kiến nghị ({num(pre)} ý kiến tổng hợp trước Hội nghị, "
              f"{num(total - pre)} ý kiến tại Hội nghị); đã trả lời trực tiếp {num(live)} ý kiến; chuyển trả lời "
              f"bằng văn bản {num(writing)} ý kiến (đã có văn bản trả lời {num(written)}); gộp, không xem xét "
              f"hoặc chưa xử lý {num(other)} ý kiến. Kết quả theo nhóm vấn đề:")
    rows = [(index, topic["name"], *outcome_columns(topic)) for index, topic in enumerate(questions["by_topic"], 1)]
    rows.append(("", "Tổng cộng", total, live, writing, written, other))
    grid(doc, ("STT", "Nhóm vấn đề", "Số ý kiến", "Trả lời tại Hội nghị", "Chuyển trả lời bằng văn bản",
               "Đã có văn bản trả lời", "Gộp, không xem xét, chưa xử lý"), rows, (13, 58, 17, 20, 20, 19, 18), size=11,
         centred=(0, 2, 3, 4, 5, 6))


def _agencies(doc: Any, report: Report) -> None:
    agencies, counts = report["agencies"]["rows"], report["agencies"]["counts"]
    para(doc, "III. CÁC CƠ QUAN, ĐƠN VỊ TRẢ LỜI Ý KIẾN", bold=True)
    absent = [a["name"] for a in agencies if a["status"] == "absent"]
    para(doc, f"Có {counts['head'] + counts['deputy']}/{len(agencies)} cơ quan, đơn vị tham dự"
              + (f"; vắng: {', '.join(absent)}." if absent else "."))
    assigned = Counter(q["agency"] for q in report["questions"]["rows"])
    writing = {g["agency"]: g["count"] for g in report["deferred"]}
    rows = []
    for index, agency in enumerate(agencies, 1):
        status = ATTENDANCE.get(agency["status"], "Chưa ghi nhận")
        if agency["written_report"]:
            status += " (có báo cáo bằng văn bản)"
        rows.append((index, agency["name"], status, agency["delegate"] or "", assigned[agency["agency"]],
                     writing.get(agency["agency"], 0)))
    grid(doc, ("STT", "Cơ quan, đơn vị", "Tham dự", "Người dự", "Ý kiến được giao", "Trả lời bằng văn bản"), rows,
         (13, 48, 34, 30, 20, 20), size=11, centred=(0, 4, 5))


def _programme(doc: Any, report: Report) -> None:
    items = report["agenda"]
    if not items:
        return
    para(doc, "IV. CHƯƠNG TRÌNH HỘI NGHỊ: KẾ HOẠCH VÀ THỰC TẾ", bold=True)
    rows = [(i, item["title"], f"{_clock(item['planned_start'])} ({item['minutes']} phút)", _actual(item))
            for i, item in enumerate(items, 1)]
    grid(doc, ("STT", "Nội dung", "Kế hoạch", "Thực tế"), rows, (13, 72, 40, 40), centred=(0, 2, 3))


def _actual(item: dict[str, Any]) -> str:
    """When a programme item started and how long it took: `07:50 (3,9 phút)`, `07:30 (20 phút)`."""
    minutes = item["actual_minutes"]
    if minutes is None:
        return _clock(item["started"])
    return f"{_clock(item['started'])} ({num(int(minutes) if minutes.is_integer() else minutes)} phút)"


def _written(doc: Any, report: Report) -> None:
    para(doc, "V. NỘI DUNG CHUYỂN TRẢ LỜI BẰNG VĂN BẢN", bold=True)
    groups = report["written"]["rows"]
    if not groups:
        para(doc, "Tất cả ý kiến, kiến nghị đã được trả lời trực tiếp tại Hội nghị.")
    for g in groups:
        para(doc, f"- {g['name'] or NO_AGENCY}: {g['count']} ý kiến, đã trả lời {g['received']}"
                  + (f", hạn {_date(g['due'])};" if g["due"] else ";"))
