"""Pre-compiled questions from a CSV or XLSX file, checked row by row before anything is stored.

A file is all or nothing: every row is checked first (columns, names, lengths) and, if any row is
wrong, nothing is imported and every bad row is reported ("dòng 7: unknown site 'x'"), so a
moderator fixes the file and imports it again. Each row becomes one `question.submit` event with
origin "pre" and an op_id made from the row's own content, so importing the same rows again (the
same file, or the file with rows added) stores only the rows not stored before.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from hub.config import Config
from hub.core.commands import QuestionSubmit
from hub.core.errors import HubError, describe_validation
from hub.core.hub import Hub
from hub.questions.search import fold
from hub.tokens import Identity

MAX_ROWS = 10_000
REQUIRED = ("topic", "site", "delegate", "text")
# Folded header -> field. English names as the example file has them, Vietnamese as secretariats write them.
HEADERS = {fold(alias): name for name, aliases in {
    "topic": ("topic", "Nhóm vấn đề", "Nhóm", "Chủ đề", "Lĩnh vực"),
    "site": ("site", "Điểm cầu", "Địa phương"),
    "delegate": ("delegate", "Họ tên", "Họ và tên", "Đại biểu", "Người hỏi"),
    "unit": ("unit", "Đơn vị", "Đơn vị công tác"),
    "text": ("text", "Nội dung", "Câu hỏi", "Nội dung câu hỏi", "Ý kiến, kiến nghị"),
    "agency": ("agency", "Cơ quan trả lời", "Cơ quan"),
    "answer_note": ("answer_note", "Ghi chú", "Gợi ý trả lời", "Nội dung trả lời"),
    "wants_to_speak": ("wants_to_speak", "Phát biểu trực tiếp", "Phát biểu"),
}.items() for alias in aliases}
YES = frozenset({"x", "co", "yes", "y", "1", "true"})
NO = frozenset({"", "khong", "no", "n", "0", "false"})


class ImportFileError(Exception):
    """The file as a whole cannot be read (not UTF-8, not a workbook, no usable header)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # as the spreadsheet numbers it: the header is line 1
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message,
                "text": f"dòng {self.line}: {self.message}"}


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    fields: dict[str, Any]  # the question.submit fields
    op_id: str


@dataclass(slots=True)
class Parsed:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


# -- reading ----------------------------------------------------------------------------------------

def read_table(data: bytes) -> list[tuple[int, list[str]]]:
    """The file's non-empty lines as (line number, cells); XLSX is told from CSV by its zip signature."""
    lines = _read_xlsx(data) if data[:4] == b"PK\x03\x04" else _read_csv(data)
    return [(n, cells) for n, cells in lines if any(cells)]


def _read_csv(data: bytes) -> list[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"the file is not UTF-8 text (byte {exc.start}); save it as \"CSV UTF-8\"") from None
    try:
        dialect: Any = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        return [(reader.line_num, [c.strip() for c in cells]) for cells in reader]
    except csv.Error as exc:
        raise ImportFileError(f"dòng {reader.line_num}: {exc}") from None


def _read_xlsx(data: bytes) -> list[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"the file is not a readable XLSX workbook ({exc})") from None
    try:
        sheet = book.worksheets[0]
        return [(n, [_cell(v) for v in row]) for n, row in enumerate(sheet.iter_rows(values_only=True), start=1)]
    finally:
        book.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value).strip()


# -- checking ---------------------------------------------------------------------------------------

def parse_questions(config: Config, data: bytes) -> Parsed:
    """Every row checked against the config and the command's schema; raises ImportFileError for the file."""
    table = read_table(data)
    if not table:
        raise ImportFileError("the file is empty")
    header_line, header = table[0]
    columns = _columns(header, header_line)
    if len(table) - 1 > MAX_ROWS:
        raise ImportFileError(f"{len(table) - 1} rows; at most {MAX_ROWS} in one file")
    parsed = Parsed()
    seen: dict[bytes, int] = {}
    for line, cells in table[1:]:
        values = {name: cells[i] if i < len(cells) else "" for name, i in columns.items()}
        fields, errors = _fields(config, values, line)
        if errors:
            parsed.errors.extend(errors)
            continue
        canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        seen[canonical] = seen.get(canonical, 0) + 1
        digest = hashlib.sha256(canonical + b"#%d" % seen[canonical]).hexdigest()[:40]
        parsed.rows.append(ImportRow(line, fields, f"import-{digest}"))
    return parsed


def _columns(header: list[str], line: int) -> dict[str, int]:
    columns: dict[str, int] = {}
    for i, title in enumerate(header):
        name = HEADERS.get(" ".join(fold(title).replace("*", "").rstrip(":").split()))
        if name is not None and name not in columns:
            columns[name] = i
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise ImportFileError(f"dòng {line}: missing column(s) {', '.join(missing)}; the header has "
                              f"{', '.join(repr(h) for h in header if h) or 'nothing'}")
    return columns


def _fields(config: Config, values: dict[str, str], line: int) -> tuple[dict[str, Any], list[RowError]]:
    errors: list[RowError] = []
    fields: dict[str, Any] = {"origin": "pre", "delegate": {"name": values["delegate"], "unit": values.get("unit", "")}}
    for name, items, required in (("topic", config.topics, True), ("site", config.sites, True),
                                  ("agency", config.agencies, False)):
        value = values.get(name, "")
        if not value:
            if required:
                errors.append(RowError(line, name, f"{name} is empty"))
            continue
        found = resolve(value, items)
        if found is None:
            errors.append(RowError(line, name, f"unknown {name} {value!r}"))
        fields[name] = found
    errors += [RowError(line, name, f"{name} is empty") for name in ("delegate", "text") if not values[name]]
    fields["text"] = values["text"]
    if values.get("answer_note"):
        fields["answer_note"] = values["answer_note"]
    speak = fold(values.get("wants_to_speak", ""))
    if speak not in YES | NO:
        errors.append(RowError(line, "wants_to_speak", f"wants_to_speak {values['wants_to_speak']!r} is not yes/no (có/không)"))
    fields["wants_to_speak"] = speak in YES
    if not errors:
        try:
            QuestionSubmit.model_validate(fields)
        except ValidationError as exc:
            errors.append(RowError(line, None, describe_validation(exc)))
    return fields, errors


def resolve(value: str, items: Iterable[Any]) -> str | None:
    """A config id from its id or any of its names (name, short name, video endpoint), diacritics optional."""
    key = fold(value).strip()
    for item in items:
        if value == item.id:
            return item.id
    for item in items:
        names = (item.id, item.name, getattr(item, "short", None), getattr(item, "endpoint", None))
        if any(n and fold(n) == key for n in names):
            return item.id
    return None


# -- storing ----------------------------------------------------------------------------------------

def report(parsed: Parsed, results: list[dict[str, Any]] | None, before_seq: int | None = None) -> dict[str, Any]:
    """The per-row answer both the CLI and the HTTP endpoint give, as JSON."""
    stored = results or []
    new = sum(1 for r in stored if r.get("question") and before_seq is not None and r["seq"] > before_seq)
    failed = sum(1 for r in stored if r.get("error"))
    return {
        "ok": not parsed.errors and not failed, "rows": len(parsed.rows) + len({e.line for e in parsed.errors}),
        "imported": new, "unchanged": sum(1 for r in stored if r.get("question")) - new, "failed": failed,
        "errors": [e.as_dict() for e in parsed.errors], "results": stored,
    }


def row_result(row: ImportRow, result: dict[str, Any] | None = None, error: dict[str, str] | None = None
               ) -> dict[str, Any]:
    """One stored row: its question id and seq, or the hub's error (`code`, `message`)."""
    if error is not None:
        return {"line": row.line, "op_id": row.op_id, "error": error, "text": f"dòng {row.line}: {error['message']}"}
    assert result is not None
    return {"line": row.line, "op_id": row.op_id, "question": result["question"], "seq": result["seq"]}


async def store(hub: Hub, who: Identity, rows: list[ImportRow]) -> list[dict[str, Any]]:
    """Submit every row as its identity; all are folded at once and share the log's group commits."""
    pending: list[Any] = []
    for row in rows:
        try:
            pending.append(hub.dispatch(who, "question.submit", row.fields, row.op_id))
        except HubError as exc:
            pending.append(exc)
    results = []
    for row, outcome in zip(rows, pending):
        if isinstance(outcome, HubError):
            results.append(row_result(row, error={"code": outcome.code, "message": outcome.message}))
        else:
            results.append(row_result(row, await hub.settled(outcome)))
    return results

