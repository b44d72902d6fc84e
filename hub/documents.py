"""Official documents from the log: a letter per agency forwarding its deferred questions, and the summary report.

The content is built from the state's views (plain data taken on the event loop), so rendering, which
is slow, can run in a thread; the same code serves `diemcau documents` and the moderator's download.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from .config import Config
from .deadlines import IN_WRITING, today
from .http import require
from .keys import HUB
from .official import Issuer, closing, grid, header, line, new_document, para, title, to_bytes, vn_date
from .state import State

DOWNLOAD_ROLES = frozenset({"admin", "moderator"})
REPORT_NAME = "bao-cao-ket-qua.docx"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ATTENDANCE = {"head": "Thủ trưởng dự", "deputy": "Cấp phó dự", "absent": "Vắng"}


def collect(state: State) -> dict[str, Any]:
    """What the documents need, as plain data: the full snapshot plus each site's peak attendance."""
    data = state.snapshot()
    data["peaks"] = {sid: site.peak for sid, site in state.sites.items()}
    return data


def letter_name(agency: str) -> str:
    return f"cong-van-{agency}.docx"


def in_writing(data: dict[str, Any], agency: str | None = None) -> list[dict[str, Any]]:
    """The questions to be answered in writing (deferred, or already answered so), for one agency or all."""
    return [q for q in data["questions"] if q["status"] in IN_WRITING and (agency is None or q["agency"] == agency)]


def catalogue(config: Config, data: dict[str, Any]) -> list[dict[str, str]]:
    """The documents this state gives: name and title, the report first."""
    docs = [{"name": REPORT_NAME, "title": f"Báo cáo kết quả tổ chức {config.event.title}"}]
    for agency in config.agencies:
        if in_writing(data, agency.id):
            docs.append({"name": letter_name(agency.id), "title": f"Công văn gửi {agency.name}"})
    return docs


def num(value: int) -> str:
    """2.300, as Vietnamese documents write thousands."""
    return f"{value:,}".replace(",", ".")


def render(config: Config, data: dict[str, Any], day: dt.date) -> dict[str, bytes]:
    """Every document as .docx bytes, by file name."""
    return {d["name"]: render_one(config, data, d["name"], day) for d in catalogue(config, data)}


def render_one(config: Config, data: dict[str, Any], name: str, day: dt.date) -> bytes:
    """One document (a name from `catalogue`) as .docx bytes."""
    if name == REPORT_NAME:
        return report_document(config, data, day)
    agency = name.removeprefix("cong-van-").removesuffix(".docx")
    return letter_document(config, agency, in_writing(data, agency), day)


# -- the letter to an agency ------------------------------------------------------------------------


def letter_document(config: Config, agency_id: str, questions: Sequence[dict[str, Any]], day: dt.date) -> bytes:
    """Công văn: forwards an agency's deferred questions and asks for written answers by their due date."""
    issuer = Issuer.from_config(config)
    agency = next(a for a in config.agencies if a.id == agency_id)
    ev = config.event
    doc = new_document(f"Công văn gửi {agency.name}", issuer.body)
    header(doc, issuer, issuer.number_prefix, day,
           summary="trả lời bằng văn bản ý kiến, kiến nghị của người lao động tại Hội nghị")
    line(doc, "")
    line(doc, f"Kính gửi: {agency.name}.")
    line(doc, "")
    due = min(q["due"] for q in questions if q["due"]) if any(q["due"] for q in questions) else None
    venue = f" tại {ev.venue}" if ev.venue else ""
    para(doc, f"{vn_date(ev.date).capitalize()}, {issuer.body} đã tổ chức {ev.title}{venue}. Tại Hội nghị, "
              f"một số ý kiến, kiến nghị của công nhân, viên chức, người lao động thuộc chức năng, nhiệm vụ "
              f"của {agency.name} chưa được trả lời trực tiếp.")
    by_date = f" trước {vn_date(dt.date.fromisoformat(due))}" if due else ""
    para(doc, f"{issuer.body} chuyển {agency.name} {len(questions)} ý kiến, kiến nghị (danh sách dưới đây), "
              f"đề nghị nghiên cứu, trả lời bằng văn bản cho người lao động, đồng thời gửi về {issuer.reply_to}"
              f"{by_date} để tổng hợp, báo cáo theo quy định.")
    sites = config.site_ids
    rows = [(index, sites[q["site"]].name, _askers(q, sites), q["delegate"].get("unit", ""), q["text"],
             _date(q["due"]))
            for index, q in enumerate(questions, 1)]
    grid(doc, ("STT", "Điểm cầu", "Đại biểu", "Đơn vị", "Nội dung ý kiến, kiến nghị", "Hạn trả lời"), rows,
         (13, 25, 25, 27, 52, 23), size=11)
    para(doc, f"Đề nghị {agency.name} quan tâm, thực hiện./.")
    closing(doc, issuer, ["Như trên", *issuer.copy_to])
    return to_bytes(doc)


def _askers(q: dict[str, Any], sites: dict[str, Any]) -> str:
    """The delegate, then anyone whose same question was merged into this one."""
    names = [q["delegate"]["name"]]
    names += [f"{a['name']} ({sites[a['site']].name})" for a in q["co_askers"] if a.get("site") in sites]
    return "; ".join(names)


def _date(iso: str | None) -> str:
    return dt.date.fromisoformat(iso[:10]).strftime("%d/%m/%Y") if iso else ""


def _clock(iso: str | None) -> str:
    return iso[11:16] if iso else "—"


# -- the summary report -----------------------------------------------------------------------------


def report_document(config: Config, data: dict[str, Any], day: dt.date) -> bytes:
    """Báo cáo: attendance, questions by topic group and outcome, agencies present, the programme, written answers."""
    issuer = Issuer.from_config(config)
    ev = config.event
    doc = new_document(f"Báo cáo kết quả tổ chức {ev.title}", issuer.body)
    header(doc, issuer, f"BC-{issuer.number_prefix.split('-')[0]}", day)
    title(doc, "Báo cáo", f"Kết quả tổ chức {ev.title}")
    para(doc, f"{vn_date(ev.date).capitalize()}, {issuer.body} tổ chức {ev.title} theo hình thức trực tiếp kết hợp "
              f"trực tuyến tại {len(config.sites)} điểm cầu. {issuer.body} báo cáo kết quả như sau:")
    _attendance(doc, config, data)
    _questions(doc, config, data)
    _agencies(doc, config, data)
    _programme(doc, data)
    _written(doc, config, data)
    para(doc, f"Trên đây là báo cáo kết quả tổ chức Hội nghị của {issuer.body}./.")
    closing(doc, issuer, issuer.copy_to)
    return to_bytes(doc)


def _attendance(doc: Any, config: Config, data: dict[str, Any]) -> None:
    totals = data["totals"]
    present, expected = totals["attendance"], totals["expected"]
    share = f" (đạt {present / expected * 100:.1f}%)".replace(".", ",") if expected else ""
    para(doc, "I. THÀNH PHẦN, SỐ LƯỢNG ĐẠI BIỂU THAM DỰ", bold=True)
    para(doc, f"Tổng số đại biểu tham dự: {num(present)}/{num(expected)} đại biểu dự kiến{share} "
              f"tại {len(config.sites)} điểm cầu; trong đó:")
    for category in config.categories:
        para(doc, f"- {category.name}: {num(totals['by_category'].get(category.id, 0))} người;")
    rows = [(i, s["name"], num(s["expected"]), num(s["present"]), num(data["peaks"].get(s["id"], 0)))
            for i, s in enumerate(data["sites"], 1)]
    rows.append(("", "Tổng cộng", num(expected), num(present), ""))
    grid(doc, ("STT", "Điểm cầu", "Dự kiến", "Có mặt", "Cao nhất"), rows, (13, 84, 22, 22, 24))


def _outcomes(questions: Sequence[dict[str, Any]]) -> tuple[int, int, int, int, int]:
    """Total, answered at the meeting, sent for written answers, written answers received, other."""
    status = [q["status"] for q in questions]
    live = status.count("answered")
    writing = sum(s in IN_WRITING for s in status)
    return len(status), live, writing, status.count("answered_written"), len(status) - live - writing


def _questions(doc: Any, config: Config, data: dict[str, Any]) -> None:
    questions = data["questions"]
    total, live, writing, written, other = _outcomes(questions)
    pre = sum(q["origin"] == "pre" for q in questions)
    para(doc, "II. KẾT QUẢ ĐỐI THOẠI", bold=True)
    para(doc, f"Hội nghị nhận {num(total)} ý kiến, kiến nghị ({num(pre)} ý kiến tổng hợp trước Hội nghị, "
              f"{num(total - pre)} ý kiến tại Hội nghị); đã trả lời trực tiếp {num(live)} ý kiến; chuyển trả lời "
              f"bằng văn bản {num(writing)} ý kiến (đã có văn bản trả lời {num(written)}); gộp, không xem xét "
              f"hoặc chưa xử lý {num(other)} ý kiến. Kết quả theo nhóm vấn đề:")
    rows = []
    for index, topic in enumerate(config.topics, 1):
        rows.append((index, topic.name, *_outcomes([q for q in questions if q["topic"] == topic.id])[0:5]))
    rows.append(("", "Tổng cộng", total, live, writing, written, other))
    grid(doc, ("STT", "Nhóm vấn đề", "Số ý kiến", "Trả lời tại Hội nghị", "Chuyển trả lời bằng văn bản",
               "Đã có văn bản trả lời", "Gộp, không xem xét, chưa xử lý"), rows, (13, 58, 17, 20, 20, 19, 18), size=11)


def _agencies(doc: Any, config: Config, data: dict[str, Any]) -> None:
    present = data["agencies"]
    para(doc, "III. CÁC CƠ QUAN, ĐƠN VỊ TRẢ LỜI Ý KIẾN", bold=True)
    came = [a for a in config.agencies if present.get(a.id, {}).get("status") in ("head", "deputy")]
    absent = [a.name for a in config.agencies if present.get(a.id, {}).get("status") == "absent"]
    para(doc, f"Có {len(came)}/{len(config.agencies)} cơ quan, đơn vị tham dự"
              + (f"; vắng: {', '.join(absent)}." if absent else "."))
    rows = []
    for index, agency in enumerate(config.agencies, 1):
        record = present.get(agency.id, {})
        status = ATTENDANCE.get(record.get("status"), "Chưa ghi nhận")
        if record.get("written_report"):
            status += " (có báo cáo bằng văn bản)"
        assigned = [q for q in data["questions"] if q["agency"] == agency.id]
        rows.append((index, agency.name, status, record.get("delegate") or "", len(assigned),
                     len(in_writing(data, agency.id))))
    grid(doc, ("STT", "Cơ quan, đơn vị", "Tham dự", "Người dự", "Ý kiến được giao", "Trả lời bằng văn bản"), rows,
         (13, 48, 34, 30, 20, 20), size=11)


def _programme(doc: Any, data: dict[str, Any]) -> None:
    items = data["agenda"]["items"]
    if not items:
        return
    para(doc, "IV. CHƯƠNG TRÌNH HỘI NGHỊ: KẾ HOẠCH VÀ THỰC TẾ", bold=True)
    rows = [(i, item["title"], f"{_clock(item['planned_start'])} ({item['minutes']} phút)",
             f"{_clock(item['started'])}" + (f" ({item['actual_minutes']:g} phút)" if item["actual_minutes"] is not None else ""))
            for i, item in enumerate(items, 1)]
    grid(doc, ("STT", "Nội dung", "Kế hoạch", "Thực tế"), rows, (13, 92, 30, 30))


def _written(doc: Any, config: Config, data: dict[str, Any]) -> None:
    para(doc, "V. NỘI DUNG CHUYỂN TRẢ LỜI BẰNG VĂN BẢN", bold=True)
    lines = []
    for agency in config.agencies:
        questions = in_writing(data, agency.id)
        if questions:
            received = sum(q["status"] == "answered_written" for q in questions)
            due = min((q["due"] for q in questions if q["due"]), default=None)
            lines.append(f"- {agency.name}: {len(questions)} ý kiến, đã trả lời {received}"
                         + (f", hạn {_date(due)};" if due else ";"))
    if not lines:
        para(doc, "Tất cả ý kiến, kiến nghị đã được trả lời trực tiếp tại Hội nghị.")
    for text in lines:
        para(doc, text)


# -- download ------------------------------------------------------------------------------------


def _day(request: web.Request) -> dt.date:
    hub = request.app[HUB]
    given = request.query.get("date")
    if given is None:
        return today(hub.state, hub.clock())
    try:
        return dt.date.fromisoformat(given)
    except ValueError:
        raise web.HTTPBadRequest(text=f'{{"error": "date must be YYYY-MM-DD, not {given[:20]!r}"}}',
                                 content_type="application/json") from None


async def api_list(request: web.Request) -> web.Response:
    """GET /api/documents: the documents on offer, for the moderator console to list."""
    await require(request, DOWNLOAD_ROLES)
    hub = request.app[HUB]
    return web.json_response({"documents": catalogue(hub.config, collect(hub.state))})


async def api_one(request: web.Request) -> web.Response:
    """GET /api/documents/{name}: one .docx."""
    await require(request, DOWNLOAD_ROLES)
    hub, name = request.app[HUB], request.match_info["name"]
    data, day = collect(hub.state), _day(request)
    if name not in {d["name"] for d in catalogue(hub.config, data)}:
        raise web.HTTPNotFound(text=f'{{"error": "no document {name[:80]!r}"}}', content_type="application/json")
    body = await asyncio.to_thread(render_one, hub.config, data, name, day)
    return web.Response(body=body, content_type=DOCX,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def api_zip(request: web.Request) -> web.Response:
    """GET /api/documents.zip: every document in one archive."""
    await require(request, DOWNLOAD_ROLES)
    hub = request.app[HUB]
    data, day = collect(hub.state), _day(request)
    body = await asyncio.to_thread(_zip, hub.config, data, day)
    name = f"{hub.config.event.id}-van-ban.zip"
    return web.Response(body=body, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _zip(config: Config, data: dict[str, Any], day: dt.date) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in render(config, data, day).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/documents", api_list)
    app.router.add_get("/api/documents.zip", api_zip)
    app.router.add_get("/api/documents/{name}", api_one)
