"""The report's four forms, each drawn from the same model: JSON, a printable HTML page, a workbook, a CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any

import orjson
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from .access import templates
from .report_chart import chart_svg
from .report_tables import TEXT, Column, Table, layout, when

FORMATS = ("html", "xlsx", "csv", "json")
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json",
               "csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
NUMBER_FORMATS = {"int": "#,##0", "float": "0.0", "datetime": "dd/mm/yyyy hh:mm:ss", "date": "dd/mm/yyyy"}
SHEET_NAME_MAX = 31
BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


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


class SheetWriter:
    """Writes one table on a write-only sheet: title row, frozen header row, typed cells, widths."""

    TITLE = Font(bold=True, size=13)
    HEADER = Font(bold=True)
    HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")
    WRAP = Alignment(wrap_text=True, vertical="top")
    TOP = Alignment(vertical="top")

    def __init__(self, ws: WriteOnlyWorksheet, table: Table) -> None:
        self.ws, self.table = ws, table

    def write(self) -> None:
        table, ws = self.table, self.ws
        for index, column in enumerate(table.columns, 1):
            ws.column_dimensions[get_column_letter(index)].width = column.width
        ws.freeze_panes = "A3"
        ws.append([self.cell(table.title, font=self.TITLE)])
        ws.append([self.cell(c.label, font=self.HEADER, fill=self.HEADER_FILL, align=self.WRAP) for c in table.columns])
        last = len(table.rows) - 1
        for number, row in enumerate(table.rows):
            bold = table.totals and number == last
            ws.append([self.value(v, c, bold) for v, c in zip(row, table.columns, strict=True)])
        if table.note:
            ws.append([])
            ws.append([self.cell(table.note, font=self.HEADER)])

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

    def value(self, value: Any, column: Column, bold: bool) -> Any:
        value = xlsx_value(value)
        kind = column.kind if column.kind != "any" else _kind_of(value)
        if kind == "text" and not bold:
            return value
        cell = self.cell(value, font=self.HEADER if bold else None, align=self.WRAP if kind == "long" else self.TOP)
        if kind in NUMBER_FORMATS:
            cell.number_format = NUMBER_FORMATS[kind]
        return cell


def _kind_of(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return "text"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "datetime" if isinstance(value, dt.datetime) else "date"


def render_xlsx(model: dict[str, Any], lang: str = "vi") -> bytes:
    """One sheet per section and one per answering agency's deferred list."""
    tables = layout(model, lang)
    workbook = Workbook(write_only=True)
    for table, name in zip(tables, sheet_names(tables), strict=True):
        SheetWriter(workbook.create_sheet(name), table).write()
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
