"""Official documents from the log of the replayed Kon Tum day: opened again with python-docx, checked line by
line against the decree's layout and the replay's figures, and rendered to PDF by LibreOffice headless.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import zipfile
from pathlib import Path

import aiohttp
import docx
import pytest
from click.testing import CliRunner

from hub.cli.main import cli
from hub.config import Config, Documents
from hub.documents.letters import report_document
from hub.documents.official import MOTTO, NATION, vn_date
from hub.report.build import build_report

from .conftest import KON_TUM, ManualClock, RunningHub, StartHub
from .kontum_day import Expected, load_rows, replay

ISSUED = "2023-12-05"


def texts(cell_or_doc: object) -> list[str]:
    return [p.text for p in cell_or_doc.paragraphs]  # type: ignore[attr-defined]


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def to_pdf(files: list[Path], out: Path, profile: Path) -> None:
    """LibreOffice headless, with a profile of its own so parallel runs do not share a lock."""
    log = out.with_suffix(".log")
    with log.open("wb") as sink:  # a file, not a pipe: a lingering soffice child would hold a pipe open
        done = subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
                               "pdf", "--outdir", str(out), *map(str, files)], stdout=sink, stderr=sink, timeout=120)
    assert done.returncode == 0, log.read_text(errors="replace")


def expected_letters(config: Config, day: Expected) -> dict[str, list[str]]:
    """Agency -> the texts of the questions it must answer in writing (still deferred or answered since)."""
    text = {day.question_ids[r.line]: r.text for r in load_rows()}
    agency = {day.question_ids[r.line]: r.agency for r in load_rows()}
    out: dict[str, list[str]] = {}
    for qid in sorted([q for qs in day.deferred_by_agency.values() for q in qs] + list(day.written),
                      key=lambda q: int(q[1:])):
        out.setdefault(agency[qid], []).append(text[qid])
    return out


@pytest.mark.parametrize("day, text", [
    (dt.date(2023, 11, 24), "ngày 24 tháng 11 năm 2023"), (dt.date(2024, 2, 5), "ngày 05 tháng 02 năm 2024"),
    (dt.date(2024, 3, 9), "ngày 09 tháng 3 năm 2024"), (dt.date(2024, 1, 10), "ngày 10 tháng 01 năm 2024"),
])
def test_dates_written_as_the_decree_asks(day: dt.date, text: str) -> None:
    assert vn_date(day) == text


async def test_documents_from_the_log(start_hub: StartHub, config: Config, db_path: Path, tmp_path: Path) -> None:
    running = await start_hub(clock=ManualClock())
    day = await replay(running, running.hub.clock)  # type: ignore[arg-type]
    letters = expected_letters(config, day)
    assert len(letters) >= 3 and sum(map(len, letters.values())) >= 10
    zipped = await download(running, "/api/documents.zip")
    agenda = running.hub.state.agenda_view()["items"]
    await running.server.close()

    out = tmp_path / "docs"
    result = CliRunner().invoke(cli, ["documents", "--config", str(KON_TUM), "--db", str(db_path),
                                      "--out", str(out), "--date", ISSUED])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.docx"))
    assert {f.name for f in files} == {"bao-cao-ket-qua.docx", *(f"cong-van-{a}.docx" for a in letters)}
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        assert sorted(archive.namelist()) == sorted(f.name for f in files)

    for agency, questions in letters.items():
        check_letter(config, docx.Document(str(out / f"cong-van-{agency}.docx")), agency, questions, day)
    check_report(config, docx.Document(str(out / "bao-cao-ket-qua.docx")), day, agenda)

    pdfs = tmp_path / "pdf"
    to_pdf(files, pdfs, tmp_path / "lo-profile")
    for file in files:
        pdf = (pdfs / file.with_suffix(".pdf").name).read_bytes()
        assert pdf.startswith(b"%PDF") and page_count(pdf) >= 1, file.name


def check_header(document: docx.document.Document, number_suffix: str) -> None:
    """Decree 30 layout: A4, margins, the font, issuing body beside the motto, number and place-date."""
    section = document.sections[0]
    sizes = (section.page_width, section.page_height, section.left_margin, section.right_margin, section.top_margin)
    assert [round(x.mm) for x in sizes] == [210, 297, 30, 15, 20]
    assert document.styles["Normal"].font.name == "Times New Roman"
    head = document.tables[0]
    assert texts(head.cell(0, 0))[0] == "ỦY BAN NHÂN DÂN TỈNH KON TUM"
    assert texts(head.cell(0, 1))[:2] == [NATION, MOTTO]
    assert re.fullmatch(rf"Số: +/{number_suffix}", texts(head.cell(1, 0))[0])
    assert texts(head.cell(1, 1)) == ["Kon Tum, ngày 05 tháng 12 năm 2023"]


def check_closing(document: docx.document.Document, first: list[str]) -> None:
    """`Nơi nhận:` with `;` lines and `Lưu: VT.` last, beside the signature block."""
    to, sign = document.tables[-1].cell(0, 0), document.tables[-1].cell(0, 1)
    lines = texts(to)
    assert lines[0] == "Nơi nhận:" and lines[-1] == "- Lưu: VT."
    assert lines[1:1 + len(first)] == [f"- {x};" for x in first]
    assert all(x.startswith("- ") and x.endswith(";") for x in lines[1:-1])
    signature = [x for x in texts(sign) if x]
    assert signature == ["TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH", "Lê Ngọc Tuấn"]


def check_letter(config: Config, document: docx.document.Document, agency: str, questions: list[str],
                 day: Expected) -> None:
    name = next(a.name for a in config.agencies if a.id == agency)
    check_header(document, "UBND-KGVX")
    assert texts(document.tables[0].cell(1, 0))[1].startswith("V/v trả lời bằng văn bản")
    body = texts(document)
    assert f"Kính gửi: {name}." in body
    assert any(f"chuyển {name} {len(questions)} ý kiến" in p and "trước ngày 09 tháng 12 năm 2023" in p for p in body)
    table = document.tables[1]
    rows = [[c.text for c in r.cells] for r in table.rows]
    assert rows[0] == ["STT", "Điểm cầu", "Đại biểu", "Đơn vị", "Nội dung ý kiến, kiến nghị", "Hạn trả lời"]
    assert [r[4] for r in rows[1:]] == questions
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(1, len(questions) + 1)]
    assert {r[5] for r in rows[1:]} == {dt.date.fromisoformat(day.due or "").strftime("%d/%m/%Y")}
    check_closing(document, ["Như trên", *config.documents.copy_to])


def check_report(config: Config, document: docx.document.Document, day: Expected, agenda: list[dict]) -> None:
    check_header(document, "BC-UBND")
    body = texts(document)
    assert "BÁO CÁO" in body and f"Kết quả tổ chức {config.event.title}" in body
    assert any(f"{day.total:,}/{config.expected_total:,}".replace(",", ".") in p for p in body)
    topics = [[c.text for c in r.cells] for r in document.tables[2].rows]
    by_topic = {t.name: t.id for t in config.topics}
    for cells in topics[1:-1]:
        statuses = day.by_topic_status.get(by_topic[cells[1]], {})
        assert int(cells[2]) == day.by_topic.get(by_topic[cells[1]], 0)
        assert int(cells[3]) == statuses.get("answered", 0)
        assert int(cells[4]) == statuses.get("deferred", 0) + statuses.get("answered_written", 0)
        assert int(cells[5]) == statuses.get("answered_written", 0)
    assert topics[-1][2] == str(sum(day.by_topic.values()))
    agencies = {r.cells[1].text: r.cells[2].text for r in document.tables[3].rows[1:]}
    assert agencies["Sở Kế hoạch và Đầu tư"] == "Cấp phó dự (có báo cáo bằng văn bản)"
    assert agencies["Ban Quản lý Khu kinh tế tỉnh"] == "Vắng"
    assert agencies["Bảo hiểm xã hội tỉnh"] == "Thủ trưởng dự"
    programme = [[c.text for c in r.cells] for r in document.tables[4].rows[1:]]
    assert [p[1] for p in programme] == [item.title for item in config.agenda]
    assert [p[2].split()[0] for p in programme] == [item["planned_start"][11:16] for item in agenda]
    assert [p[3].split()[0] for p in programme] == [item["started"][11:16] for item in agenda]
    assert programme[0][2].startswith(config.event.start) and f"({config.agenda[0].minutes} phút)" in programme[0][2]
    check_closing(document, config.documents.copy_to)


async def download(running: RunningHub, path: str, role: str | None = "moderator", expect: int = 200) -> bytes:
    headers = {"Authorization": f"Bearer {running.token(role)}"} if role else {}
    async with aiohttp.ClientSession() as http, http.get(running.url + path, headers=headers) as response:
        assert response.status == expect, await response.text()
        return await response.read()


@pytest.mark.parametrize("path, role, expect", [
    ("/api/documents.zip", "chair", 403), ("/api/documents.zip", None, 401), ("/api/documents", "viewer", 403),
    ("/api/documents/cong-van-bhxh.docx", "moderator", 404), ("/api/documents/../../etc/passwd", "admin", 404),
    ("/api/documents.zip?date=24-11-2023", "admin", 400),
])
async def test_download_refusals(hub: RunningHub, path: str, role: str | None, expect: int) -> None:
    await download(hub, path, role, expect)


async def test_moderator_downloads_one_document(hub: RunningHub) -> None:
    moderator = await hub.client("moderator")
    qid = (await moderator.call("question.submit", site="sa-thay", topic="policy", agency="snv", origin="pre",
                                text="Đề nghị nâng lương trước hạn.", delegate={"name": "A Blưu"}))["question"]
    await moderator.call("question.update", question=qid, status="deferred")
    listing = await download(hub, "/api/documents")
    assert b"cong-van-snv.docx" in listing
    body = await download(hub, "/api/documents/cong-van-snv.docx?date=2023-11-25")
    document = docx.Document(io.BytesIO(body))
    assert [c.text for c in document.tables[1].rows[1].cells][4] == "Đề nghị nâng lương trước hạn."
    assert texts(document.tables[0].cell(1, 1)) == ["Kon Tum, ngày 25 tháng 11 năm 2023"]


def test_without_a_documents_section_the_organiser_issues(config: Config) -> None:
    plain = config.model_copy(update={"documents": Documents()})
    document = docx.Document(io.BytesIO(report_document(plain, build_report(plain, []), dt.date(2023, 11, 30))))
    head = document.tables[0]
    assert texts(head.cell(0, 0))[0] == config.event.organiser.upper()
    assert texts(head.cell(1, 1)) == ["Ngày 30 tháng 11 năm 2023"]
    assert [x for x in texts(document.tables[-1].cell(0, 1)) if x] == ["CHỦ TỊCH"]


def test_cli_needs_an_existing_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["documents", "--config", str(KON_TUM), "--db", str(tmp_path / "none.db"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no database" in result.output
    assert not (tmp_path / "none.db").exists()
