"""The report's four forms, each drawn from the same model: JSON, a printable HTML page, a workbook, a CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.worksheet import Worksheet

from hub.documents.access_sheet import templates
from hub.report.chart import chart_svg
from hub.report.tables import TEXT, Column, Table, layout, when

FORMATS = ("html", "xlsx", "csv", "json")
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json",
               "csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
NUMBER_FORMATS = {"int": "#,##0", "float": "0.0", "datetime": "dd/mm/yyyy hh:mm:ss", "date": "dd/mm/yyyy"}
SHEET_NAME_MAX = 31
BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
PORTRAIT_WIDTH = 120  # column widths (characters) A4 portrait prints at a readable scale; wider goes landscape
HEADER_TITLE_MAX = 200  # Excel refuses a header over 255 characters, its codes included
LINE_HEIGHT = 15  # points, one line of the default 11-point font
MARGINS = PageMargins(left=0.5, right=0.5, top=0.75, bottom=0.75, header=0.3, footer=0.3)  # inches


# -- JSON -----------------------------------------------------------------------------------------

def render_json(model: dict[str, Any], lang: str = "vi") -> bytes:
    """The model itself: ids and config names, times in the event's time zone (the same in every language)."""
    return orjson.dumps(model, option=orjson.OPT_INDENT_2)


# -- CSV ------------------------------------------------------------------------------------------

def csv_value(value: Any) -> Any:
    """Plain values Excel and scripts both read: local times without an offset, dots for decimals."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else value


def render_csv(model: dict[str, Any], lang: str = "vi") -> bytes:
    """Every section in one file, each introduced by its title row; UTF-8 with a BOM so Excel reads Vietnamese."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([TEXT[lang]["report"], model["event"]["title"]])
    for table in layout(model, lang):
        writer.writerow([])
        writer.writerow([table.title])
        if table.note:
            writer.writerow([table.note])
        writer.writerow([c.label for c in table.columns])
        writer.writerows([csv_value(v) for v in row] for row in table.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# -- XLSX -----------------------------------------------------------------------------------------

def sheet_names(tables: list[Table]) -> list[str]:
    """Workbook tab names: allowed characters, at most 31 long, unique (a suffix tells twins apart)."""
    names: list[str] = []
    taken: set[str] = set()
    for table in tables:
        base = BAD_SHEET_CHARS.sub("-", table.sheet).strip("' ") or table.key
        name, n = base[:SHEET_NAME_MAX], 1
        while name.lower() in taken:
            n += 1
            suffix = f" ({n})"
            name = base[:SHEET_NAME_MAX - len(suffix)] + suffix
        taken.add(name.lower())
        names.append(name)
    return names


def xlsx_value(value: Any) -> Any:
    """Excel keeps no time zones: times go in as the event's local wall-clock time."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


@dataclass(frozen=True, slots=True)
class PageText:
    """What every printed page of the workbook carries: the event above, the sheet and page number below."""

    header: str
    footer: str

    @classmethod
    def of(cls, model: dict[str, Any], lang: str) -> PageText:
        return cls(header_title(model["event"]["title"]), TEXT[lang]["page_of"].format(page="&P", pages="&N"))


def header_title(title: str) -> str:
    """The event's title as header text: "&" doubled (a single one starts a code), cut short to fit Excel's limit."""
    text = title.replace("&", "&&")
    if len(text) <= HEADER_TITLE_MAX:
        return text
    text = text[:HEADER_TITLE_MAX - 1]
    return (text[:-1] if (len(text) - len(text.rstrip("&"))) % 2 else text) + "…"


class SheetWriter:
    """Writes one table on a write-only sheet: title row, frozen header row, typed cells, widths."""

    TITLE = Font(bold=True, size=13)
    HEADER = Font(bold=True)
    HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")
    WRAP = Alignment(wrap_text=True, vertical="top")
    TOP = Alignment(vertical="top")

    def __init__(self, ws: WriteOnlyWorksheet, table: Table, page: PageText) -> None:
        self.ws, self.table, self.page = ws, table, page
        self.rows = 0

    def write(self) -> None:
        table, ws = self.table, self.ws
        for index, column in enumerate(table.columns, 1):
            ws.column_dimensions[get_column_letter(index)].width = column.width
        ws.freeze_panes = "A3"
        self.print_setup()
        self.append([self.cell(table.title, font=self.TITLE)])
        labels = [self.cell(c.label, font=self.HEADER, fill=self.HEADER_FILL, align=self.WRAP) for c in table.columns]
        self.append(labels, max(text_lines(c.label, c.width) for c in table.columns))
        last = len(table.rows) - 1
        for number, row in enumerate(table.rows):
            bold = table.totals and number == last
            values = [xlsx_value(v) for v in row]
            lines = max((text_lines(v, c.width) for v, c in zip(values, table.columns) if wraps(v, c)), default=1)
            self.append([self.value(v, c, bold, lines > 1) for v, c in zip(values, table.columns, strict=True)], lines)
        if table.note:
            self.append([])
            self.append([self.cell(table.note, font=self.HEADER)])

    def append(self, cells: list[Any], lines: int = 1) -> None:
        """Append a row `lines` of text tall: LibreOffice keeps the height a file gives (one line if none)."""
        self.rows += 1
        if lines > 1:
            self.ws.row_dimensions[self.rows].height = lines * LINE_HEIGHT
        self.ws.append(cells)

    def print_setup(self) -> None:
        """A4, as wide as the paper (rows run on to more pages), title and column headers on every page.

        A write-only sheet writes its properties with the first row, so this comes before any row.
        """
        ws = self.ws
        wide = sum(c.width for c in self.table.columns) > PORTRAIT_WIDTH
        ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
        ws.page_setup.orientation = Worksheet.ORIENTATION_LANDSCAPE if wide else Worksheet.ORIENTATION_PORTRAIT
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
        ws.page_margins = MARGINS
        ws.print_options.gridLines = True
        ws.print_options.horizontalCentered = True
        ws.print_title_rows = "1:2"
        ws.oddHeader.center.text = self.page.header
        ws.oddFooter.left.text = "&A"
        ws.oddFooter.right.text = self.page.footer

    def cell(self, value: Any, font: Font | None = None, fill: PatternFill | None = None,
             align: Alignment | None = None) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.ws, value)
        if font is not None:
            cell.font = font
        if fill is not None:
            cell.fill = fill
        if align is not None:
            cell.alignment = align
        return cell

    def value(self, value: Any, column: Column, bold: bool, tall: bool) -> Any:
        """A typed cell; plain text stays a bare value (cheap for thousands of rows) unless its row is tall."""
        kind = column.kind if column.kind != "any" else _kind_of(value)
        wrap = wraps(value, column)
        if kind == "text" and not (bold or wrap or tall):
            return value
        cell = self.cell(value, font=self.HEADER if bold else None, align=self.WRAP if wrap else self.TOP)
        if kind in NUMBER_FORMATS:
            cell.number_format = NUMBER_FORMATS[kind]
        return cell


def wraps(value: Any, column: Column) -> bool:
    """Prose and any text wider than its column wrap; left alone, it would run off the printed page."""
    return column.kind == "long" or (isinstance(value, str) and len(value) > column.width)


def text_lines(value: Any, width: int) -> int:
    """Lines a wrapped cell takes, estimated: a unit of column width holds about a character of prose,
    less one for the ragged line ends."""
    if not isinstance(value, str):
        return 1
    per_line = max(1, width - 1)
    return sum(max(1, -(-len(part) // per_line)) for part in value.split("\n"))


def _kind_of(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return "text"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "datetime" if isinstance(value, dt.datetime) else "date"


def render_xlsx(model: dict[str, Any], lang: str = "vi") -> bytes:
    """One sheet per section and one per answering agency's deferred list, each ready to print."""
    tables = layout(model, lang)
    page = PageText.of(model, lang)
    workbook = Workbook(write_only=True)
    for table, name in zip(tables, sheet_names(tables), strict=True):
        SheetWriter(workbook.create_sheet(name), table, page).write()
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# -- HTML -----------------------------------------------------------------------------------------

class CellFormat:
    """How the printed page shows a value: 2.300 and 12,5 in Vietnamese, times as the event's clock."""

    def __init__(self, lang: str, event_date: dt.date) -> None:
        self.lang, self.event_date = lang, event_date
        self.thousands, self.decimal = (".", ",") if lang == "vi" else (",", ".")

    def number(self, value: int) -> str:
        return f"{value:,}".replace(",", self.thousands)

    def __call__(self, value: Any, kind: str = "any") -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or isinstance(value, str):
            return str(value)
        if isinstance(value, int):
            return self.number(value)
        if isinstance(value, float):
            return f"{value:.1f}".replace(".", self.decimal)
        if isinstance(value, dt.datetime):
            if value.date() == self.event_date:
                return f"{value:%H:%M}"
            return f"{value:%d/%m/%Y %H:%M}" if self.lang == "vi" else f"{value:%Y-%m-%d %H:%M}"
        return f"{value:%d/%m/%Y}" if self.lang == "vi" else value.isoformat()


def render_html(model: dict[str, Any], lang: str = "vi") -> bytes:
    """The printable A4 page: summary and chart, then one section per table, page breaks between them."""
    date = dt.date.fromisoformat(model["event"]["session_date"])
    fmt = CellFormat(lang, date)
    labels = TEXT[lang]
    html = templates.get_template("report.html").render(
        m=model, lang=lang, t=labels, tables=layout(model, lang), fmt=fmt, date=fmt(date),
        start=fmt(when(model["event"]["session_starts_at"])),
        chart=chart_svg(model, labels, fmt.number), other_lang="en" if lang == "vi" else "vi",
        as_of=fmt(dt.datetime.fromisoformat(model["source"]["as_of"])) if model["source"]["as_of"] else "")
    return html.encode("utf-8")


RENDERERS: dict[str, Callable[[dict[str, Any], str], bytes]] = {
    "html": render_html, "xlsx": render_xlsx, "csv": render_csv, "json": render_json}
