"""Official documents from the log of the replayed Kon Tum day: opened again with python-docx, checked line by
line against the decree's layout and the replay's figures, and rendered to PDF by LibreOffice headless
(once for the module), whose pages are read back with pdftotext.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import subprocess
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import docx
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn

from hub.cli.main import cli
from hub.config import Config, ConfigError, Documents, load_config, parse_config
from hub.core import views
from hub.documents.letters import report_document
from hub.documents.official import MOTTO, NATION, vn_date
from hub.report.build import build_report
from hub.web.app import create_app

from .conftest import KON_TUM, ManualClock, RunningHub
from .kontum_day import Expected, load_rows, replay

ISSUED = "2023-12-05"
SIGNATURE = ("Nơi nhận:", "TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH", "Lê Ngọc Tuấn")


def texts(cell_or_doc: object) -> list[str]:
    return [p.text for p in cell_or_doc.paragraphs]  # type: ignore[attr-defined]


@dataclass
class Rendered:
    """The replayed day's documents: as the hub's zip, as the CLI's .docx files, and as LibreOffice's pages."""

    config: Config
    day: Expected
    agenda: list[dict]
    zipped: bytes
    files: dict[str, Path]  # file name -> .docx
    pages: dict[str, list[str]]  # file name -> the text of each rendered page
    made: tuple[dt.datetime, dt.datetime]  # the CLI ran between these instants (UTC, whole seconds)


@pytest.fixture(scope="module")
def kontum(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """Replay the Kon Tum day on a hub, write its documents with `diemcau documents`, render them once."""
    folder = tmp_path_factory.mktemp("documents")
    config, db_path = load_config(KON_TUM), folder / "event.db"
    day, zipped, agenda = asyncio.run(replayed(config, db_path))
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    result = CliRunner().invoke(cli, ["documents", "--config", str(KON_TUM), "--db", str(db_path),
                                      "--out", str(folder / "docs"), "--date", ISSUED])
    made = (start, dt.datetime.now(dt.timezone.utc))
    assert result.exit_code == 0, result.output
    files = {f.name: f for f in sorted((folder / "docs").glob("*.docx"))}
    to_pdf(list(files.values()), folder / "pdf", folder / "lo-profile")
    pages = {name: pdf_pages(folder / "pdf" / f.with_suffix(".pdf").name) for name, f in files.items()}
    return Rendered(config, day, agenda, zipped, files, pages, made)


async def replayed(config: Config, db_path: Path) -> tuple[Expected, bytes, list[dict]]:
    """The day on a real hub with a manual clock; the documents' zip and the programme as the hub served them."""
    server = TestServer(create_app(config, db_path, ManualClock()), host="127.0.0.1")
    await server.start_server()
    running = RunningHub(server, config, db_path)
    try:
        day = await replay(running, running.hub.clock)  # type: ignore[arg-type]
        return day, await download(running, "/api/documents.zip"), views.agenda_view(running.hub.state)["items"]
    finally:
        await running.close_clients()
        await server.close()


def pdf_pages(pdf: Path) -> list[str]:
    """Each page's text (NFC, as the documents write Vietnamese), in reading order."""
    done = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, timeout=60, check=True)
    return [unicodedata.normalize("NFC", page) for page in done.stdout.decode().split("\f")[:-1]]


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


def test_documents_from_the_log(kontum: Rendered) -> None:
    config, day = kontum.config, kontum.day
    letters = expected_letters(config, day)
    assert len(letters) >= 3 and sum(map(len, letters.values())) >= 10
    assert set(kontum.files) == {"bao-cao-ket-qua.docx", *(f"cong-van-{a}.docx" for a in letters)}
    with zipfile.ZipFile(io.BytesIO(kontum.zipped)) as archive:
        assert sorted(archive.namelist()) == sorted(kontum.files)
    for agency, questions in letters.items():
        check_letter(config, docx.Document(str(kontum.files[f"cong-van-{agency}.docx"])), agency, questions, day)
    check_report(config, docx.Document(str(kontum.files["bao-cao-ket-qua.docx"])), day, kontum.agenda)
    assert all(pages for pages in kontum.pages.values())


def test_page_numbers_from_page_two(kontum: Rendered) -> None:
    """Decree 30: the number centred in the top margin, none on page 1; a field, so Word and LibreOffice count."""
    for name, path in kontum.files.items():
        section = docx.Document(str(path)).sections[0]
        assert section.different_first_page_header_footer, name
        number = section.header.paragraphs[0]
        assert number.alignment == WD_ALIGN_PARAGRAPH.CENTER
        assert [c.text.strip() for c in number._p.iter(qn("w:instrText"))] == ["PAGE"]
        assert not section.first_page_header.is_linked_to_previous
        assert not list(section.first_page_header._element.iter(qn("w:instrText")))
        pages = kontum.pages[name]
        assert not pages[0].strip().startswith("1\n"), name
        assert [page.strip().split("\n")[0].strip() for page in pages[1:]] == [str(n) for n in range(2, len(pages) + 1)]
    assert len(kontum.pages["bao-cao-ket-qua.docx"]) >= 2


def test_signature_block_stays_on_one_page(kontum: Rendered) -> None:
    """`Nơi nhận`, the authority, title and name on one page, with the body's last paragraph ending `./.`."""
    for name, pages in kontum.pages.items():
        holding = {text: [n for n, page in enumerate(pages) if text in page] for text in SIGNATURE}
        assert all(len(found) == 1 for found in holding.values()), (name, holding)
        assert len({found[0] for found in holding.values()}) == 1, (name, holding)
        assert "./." in pages[holding["Lê Ngọc Tuấn"][0]], name
    assert any(len(pages) >= 2 for name, pages in kontum.pages.items() if name.startswith("cong-van-"))


def test_columns_aligned_as_a_whole(kontum: Rendered) -> None:
    """Every column of a table one way: STT, numbers and dates centred, text left, whatever a cell's length."""
    centred, left = WD_ALIGN_PARAGRAPH.CENTER, WD_ALIGN_PARAGRAPH.LEFT
    for name, path in kontum.files.items():
        for table in docx.Document(str(path)).tables[1:-1]:
            head = [c.text for c in table.rows[0].cells]
            for index, title in enumerate(head):
                aligned = {row.cells[index].paragraphs[0].alignment for row in table.rows[1:]}
                assert len(aligned) == 1, (name, title, aligned)
                if title in ("STT", "Hạn trả lời", "Dự kiến", "Có mặt", "Số ý kiến", "Kế hoạch", "Thực tế"):
                    assert aligned == {centred}, (name, title)
                if title in ("Điểm cầu", "Đại biểu", "Đơn vị", "Nội dung ý kiến, kiến nghị", "Tham dự", "Người dự"):
                    assert aligned == {left}, (name, title)


def test_numbers_written_the_vietnamese_way(kontum: Rendered) -> None:
    """Decimal commas and thousands dots, in the durations as in the attendance share."""
    document = docx.Document(str(kontum.files["bao-cao-ket-qua.docx"]))
    programme = [r.cells[3].text for r in document.tables[4].rows[1:]]
    assert any(re.search(r"\(\d+,\d phút\)", p) for p in programme), programme
    assert not any(re.search(r"\d\.\d", p) for p in programme), programme
    assert any("2.300/2.300 đại biểu dự kiến (đạt 100,0%)" in p for p in texts(document))


def test_file_properties(kontum: Rendered) -> None:
    """The file says who made it, when, and in what language: the organiser, today, Vietnamese."""
    organiser = kontum.config.event.organiser
    for name, path in kontum.files.items():
        document = docx.Document(str(path))
        props = document.core_properties
        assert (props.author, props.last_modified_by, props.language) == (organiser, organiser, "vi-VN"), name
        assert "python-docx" not in (props.comments or "")
        created = props.created.replace(tzinfo=dt.timezone.utc)
        assert kontum.made[0] <= created <= kontum.made[1] and props.modified == props.created, (name, created)
        defaults = document.styles.element.find(qn("w:docDefaults"))
        assert {lang.get(qn("w:val")) for lang in defaults.iter(qn("w:lang"))} == {"vi-VN"}


def test_letter_to_the_collector_reports_instead(kontum: Rendered) -> None:
    """The Labour Federation collects the answers: its own letter asks it to report them, not to send them to itself,
    and does not list it again under `Nơi nhận`."""
    collector = kontum.config.documents.reply_to
    for name, path in kontum.files.items():
        if not name.startswith("cong-van-"):
            continue
        document = docx.Document(str(path))
        addressee = next(p for p in texts(document) if p.startswith("Kính gửi: "))[len("Kính gửi: "):-1]
        body = " ".join(texts(document))
        copies = texts(document.tables[-1].cell(0, 0))
        assert f"- {addressee};" not in copies, name
        if addressee == collector:
            assert f"gửi về {collector}" not in body
            assert f"tổng hợp kết quả trả lời của các cơ quan, đơn vị, báo cáo {kontum.config.documents.issuing_body}" \
                   " theo quy định" in body
        else:
            assert f"gửi về {collector} trước" in body, name
    assert "cong-van-ldld.docx" in kontum.files


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
    """`Nơi nhận:` with `;` lines and `Lưu: VT, KGVX.` last (the drafting unit of "UBND-KGVX"), beside the signature."""
    to, sign = document.tables[-1].cell(0, 0), document.tables[-1].cell(0, 1)
    lines = texts(to)
    assert lines[0] == "Nơi nhận:" and lines[-1] == "- Lưu: VT, KGVX."
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
    check_closing(document, ["Như trên", *(c for c in config.documents.copy_to if c != name)])


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


@pytest.mark.parametrize("documents, filed", [
    ({"number_prefix": "UBND"}, "- Lưu: VT."), ({"number_prefix": "UBND-KGVX"}, "- Lưu: VT, KGVX."),
    ({"number_prefix": "UBND-KGVX", "drafting_unit": "KGVX.PTDL"}, "- Lưu: VT, KGVX.PTDL."),
])
def test_filed_with_the_drafting_unit(config: Config, documents: dict[str, str], filed: str) -> None:
    """`Lưu:` names the records office and the drafting unit: configured, or read from the number's prefix."""
    issued = config.model_copy(update={"documents": Documents(**documents)})
    document = docx.Document(io.BytesIO(report_document(issued, build_report(issued, []), dt.date(2023, 11, 30))))
    assert texts(document.tables[-1].cell(0, 0))[-1] == filed


def test_an_empty_drafting_unit_is_refused() -> None:
    text = KON_TUM.read_text(encoding="utf-8").replace('number_prefix = "UBND-KGVX"',
                                                       'number_prefix = "UBND-KGVX"\ndrafting_unit = ""')
    with pytest.raises(ConfigError, match="drafting_unit"):
        parse_config(text, "kon-tum.toml")


def test_cli_needs_an_existing_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["documents", "--config", str(KON_TUM), "--db", str(tmp_path / "none.db"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no database" in result.output
    assert not (tmp_path / "none.db").exists()
