"""The layout of a Vietnamese administrative document (Nghị định 30/2020/NĐ-CP, Phụ lục I) in python-docx.

A4; margins top and bottom 20 mm, left 30 mm, right 15 mm; Times New Roman, 14 pt body; page numbers
from page 2, centred in the top margin; the issuing body and the national motto side by side, the
number and the place-date line under them, the title, the body, then "Nơi nhận" bottom-left beside
the signature block bottom-right, kept on one page with the body's last paragraph.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.section import Section
from docx.shared import Cm, Mm, Pt
from docx.table import Table, _Cell, _Row
from docx.text.paragraph import Paragraph

from hub.config import Config

FONT = "Times New Roman"
TEXT_WIDTH_MM = 210 - 30 - 15
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
LANGUAGE = "vi-VN"


@dataclass(frozen=True, slots=True)
class Issuer:
    """Who issues and signs, from the optional `[documents]` section (defaults from `[event]`)."""

    body: str
    parent: str | None
    place: str
    number_prefix: str
    authority: str | None
    signer_title: str
    signer_name: str | None
    reply_to: str
    copy_to: tuple[str, ...]
    drafting_unit: str | None

    @classmethod
    def from_config(cls, config: Config) -> Issuer:
        d = config.documents
        body = d.issuing_body or config.event.organiser
        # A letter's number names the drafting unit after the body's abbreviation: "UBND-KGVX".
        unit = d.drafting_unit or d.number_prefix.partition("-")[2] or None
        return cls(body=body, parent=d.parent_body, place=d.place, number_prefix=d.number_prefix,
                   authority=d.authority, signer_title=d.signer_title, signer_name=d.signer_name,
                   reply_to=d.reply_to or body, copy_to=tuple(d.copy_to), drafting_unit=unit)

    @property
    def filed(self) -> str:
        """The `Lưu:` line: the records office (VT), then the drafting unit that keeps its own copy."""
        return f"Lưu: VT, {self.drafting_unit}" if self.drafting_unit else "Lưu: VT"


def vn_date(day: dt.date) -> str:
    """`ngày 05 tháng 02 năm 2024`: a zero before days under 10 and months under 3, as the decree asks."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


def new_document(title: str, author: str) -> DocxDocument:
    """An empty A4 document with the decree's margins, font and page numbers, in Vietnamese, by `author`, made now."""
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(20), Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    normal = doc.styles["Normal"]
    normal.font.name, normal.font.size = FONT, Pt(14)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), FONT)
    normal.paragraph_format.space_after = Pt(0)
    page_numbers(section)
    _vietnamese(doc)
    _properties(doc, title, author)
    return doc


def page_numbers(section: Section) -> None:
    """The page number centred in the top margin on every page but the first, as the decree asks."""
    section.different_first_page_header_footer = True
    section.header_distance = Mm(10)
    section.first_page_header.is_linked_to_previous = False  # its own, empty header: page 1 shows no number
    paragraph = section.header.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    parts = (("w:fldChar", "begin"), ("w:instrText", " PAGE "), ("w:fldChar", "separate"), ("w:t", "2"),
             ("w:fldChar", "end"))
    for tag, value in parts:  # a field: Word and LibreOffice put each page's number in place of the "2"
        run = paragraph.add_run()
        run.font.size = Pt(14)
        element = OxmlElement(tag)
        if tag == "w:fldChar":
            element.set(qn("w:fldCharType"), value)
        else:
            element.set(qn("xml:space"), "preserve")
            element.text = value
        run._r.append(element)


def _vietnamese(doc: DocxDocument) -> None:
    """Vietnamese as the text's language (spelling, hyphenation) and decimal comma, not the template's en-US."""
    defaults = doc.styles.element.find(qn("w:docDefaults"))
    for lang in defaults.iter(qn("w:lang")):
        lang.set(qn("w:val"), LANGUAGE)
    settings = doc.settings.element
    for tag, value in (("w:themeFontLang", LANGUAGE), ("w:decimalSymbol", ","), ("w:listSeparator", ";")):
        for element in settings.iter(qn(tag)):
            element.set(qn("w:val"), value)


def _properties(doc: DocxDocument, title: str, author: str) -> None:
    """The file's own metadata: the template's says python-docx wrote it in 2013, in English."""
    props, now = doc.core_properties, dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    props.title, props.author, props.last_modified_by = title, author, author
    props.created = props.modified = now
    props.language, props.comments, props.revision = LANGUAGE, "", 1


def line(container: DocxDocument | _Cell, text: str = "", size: float = 14, bold: bool = False,
         italic: bool = False, align: int = WD_ALIGN_PARAGRAPH.CENTER) -> Paragraph:
    """One paragraph in one run: the building block of headers, titles and signature blocks."""
    paragraph = container.add_paragraph()
    paragraph.alignment = align
    run = paragraph.add_run(text)
    run.font.size, run.bold, run.italic = Pt(size), bold, italic
    return paragraph


def rule(container: DocxDocument | _Cell, width_cm: float, cell_cm: float) -> None:
    """The short solid line under the issuing body, the motto and the title, centred."""
    paragraph = container.add_paragraph()
    margin = Cm(max(0.0, (cell_cm - width_cm) / 2))
    paragraph.paragraph_format.left_indent = paragraph.paragraph_format.right_indent = margin
    paragraph.paragraph_format.space_after = Pt(6)
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        bottom.set(qn(key), value)
    borders.append(bottom)
    paragraph._p.get_or_add_pPr().append(borders)
    paragraph.paragraph_format.line_spacing = Pt(2)


def _first_paragraph(cell: _Cell) -> None:
    """A new cell holds one empty paragraph; drop it so cells start with their own first line."""
    cell._tc.remove(cell.paragraphs[0]._p)


def _widths(table: Table, widths_mm: Sequence[float]) -> None:
    """Column widths in the grid (what LibreOffice reads) and in every cell (what Word reads)."""
    table.autofit = False
    for column, width in zip(table.columns, widths_mm):
        column.width = Mm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths_mm):
            cell.width = Mm(width)


def header(doc: DocxDocument, issuer: Issuer, number: str, day: dt.date, summary: str | None = None) -> None:
    """Issuing body and motto, number (with the `V/v` summary of a letter) and the place-date line."""
    left_mm, right_mm = 60, TEXT_WIDTH_MM - 60
    table = doc.add_table(rows=2, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _widths(table, (left_mm, right_mm))
    for cell in table._cells:
        _first_paragraph(cell)
    body, nation, number_cell, date_cell = table.cell(0, 0), table.cell(0, 1), table.cell(1, 0), table.cell(1, 1)
    if issuer.parent:
        line(body, issuer.parent.upper(), size=13)
    line(body, issuer.body.upper(), size=13, bold=True)
    rule(body, 2.5, left_mm / 10)
    line(nation, NATION, size=13, bold=True)
    line(nation, MOTTO, size=14, bold=True)
    rule(nation, 6.0, right_mm / 10)
    line(number_cell, f"Số:        /{number}", size=13)
    if summary:
        line(number_cell, f"V/v {summary}", size=12)
    place = f"{issuer.place}, {vn_date(day)}" if issuer.place else vn_date(day).capitalize()
    line(date_cell, place, size=14, italic=True)


def title(doc: DocxDocument, name: str, subject: str) -> None:
    """`BÁO CÁO` and its subject, bold and centred, with the short line under them."""
    line(doc, "").paragraph_format.space_after = Pt(6)
    line(doc, name.upper(), bold=True)
    line(doc, subject, bold=True)
    rule(doc, 4.0, TEXT_WIDTH_MM / 10)


def para(doc: DocxDocument, text: str, bold: bool = False, indent: bool = True) -> Paragraph:
    """A body paragraph: justified, first line indented 1.27 cm, 6 pt after, 1.15 lines."""
    paragraph = line(doc, text, bold=bold, align=WD_ALIGN_PARAGRAPH.JUSTIFY)
    fmt = paragraph.paragraph_format
    fmt.first_line_indent = Cm(1.27) if indent else None
    fmt.space_after, fmt.line_spacing = Pt(6), 1.15
    return paragraph


def grid(doc: DocxDocument, head: Sequence[str], rows: Sequence[Sequence[object]], widths_mm: Sequence[float],
         size: float = 12, centred: Collection[int] = (0,)) -> Table:
    """A bordered table; the header row is bold and repeats on every page, no row breaks across pages; the
    `centred` columns (numbers, dates; the first, STT, by default) are centred, the rest left-aligned."""
    table = doc.add_table(rows=1 + len(rows), cols=len(head))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _widths(table, widths_mm)
    for row in table.rows:
        _row_flag(row, "w:cantSplit")
    header_row = table.rows[0]
    _row_flag(header_row, "w:tblHeader")
    for cell, text in zip(header_row.cells, head):
        _cell_text(cell, text, size, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    for row, values in zip(table.rows[1:], rows):
        for column, (cell, value) in enumerate(zip(row.cells, values)):
            _cell_text(cell, "" if value is None else str(value), size,
                       align=WD_ALIGN_PARAGRAPH.CENTER if column in centred else WD_ALIGN_PARAGRAPH.LEFT)
    doc.add_paragraph().paragraph_format.space_after = Pt(6)
    return table


def _row_flag(row: _Row, tag: str) -> None:
    """Switch on a row property: `w:cantSplit` (kept on one page), then `w:tblHeader` (repeated), in schema order."""
    row._tr.get_or_add_trPr().append(OxmlElement(tag))


def _cell_text(cell: _Cell, text: str, size: float, bold: bool = False, align: int = WD_ALIGN_PARAGRAPH.LEFT) -> None:
    paragraph = cell.paragraphs[0]
    paragraph.alignment = align
    run = paragraph.add_run(text)
    run.font.size, run.bold = Pt(size), bold


def closing(doc: DocxDocument, issuer: Issuer, recipients: Sequence[str]) -> None:
    """`Nơi nhận:` bottom-left (12 pt bold italic, then 11 pt lines) beside the signature block bottom-right,
    on one page and with the body's last paragraph: a signature never opens a page alone or splits."""
    lines = [*recipients, issuer.filed]
    doc.paragraphs[-1].paragraph_format.keep_with_next = True
    table = doc.add_table(rows=1, cols=2)
    _widths(table, (80, TEXT_WIDTH_MM - 80))
    _row_flag(table.rows[0], "w:cantSplit")
    to, sign = table.cell(0, 0), table.cell(0, 1)
    for cell in (to, sign):
        _first_paragraph(cell)
    line(to, "Nơi nhận:", size=12, bold=True, italic=True, align=WD_ALIGN_PARAGRAPH.LEFT)
    for index, text in enumerate(lines):
        end = "." if index == len(lines) - 1 else ";"
        line(to, f"- {text.rstrip(';.')}{end}", size=11, align=WD_ALIGN_PARAGRAPH.LEFT)
    if issuer.authority:
        line(sign, issuer.authority.upper(), bold=True)
    line(sign, issuer.signer_title.upper(), bold=True)
    for _ in range(4):
        line(sign, "")
    line(sign, issuer.signer_name or "", bold=True)


def to_bytes(doc: DocxDocument) -> bytes:
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
