"""Importing pre-compiled questions: CSV and XLSX, Vietnamese headers and names, per-row errors, re-import."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook

from .conftest import ROOT, RunningHub
from .processes import spawn

KON_TUM_CSV = ROOT / "config" / "kon-tum-2023-questions.csv"
VI_HEADER = ["Nhóm vấn đề", "Điểm cầu", "Họ tên", "Đơn vị", "Nội dung", "Cơ quan trả lời", "Ghi chú"]
GOOD_VI = [
    ["Đào tạo, nâng cao chất lượng nguồn nhân lực", "Đắk Hà", "Y Thị Hoa", "Nông trường Đắk Uy",
     "Đề nghị mở lớp đào tạo nghề ngắn hạn tại nông trường.", "Sở LĐ-TB&XH", "Đã có kế hoạch năm 2024."],
    ["policy", "Huyện Sa Thầy", "A Tâm", "", "Đề nghị hướng dẫn chế độ ốm đau.", "bhxh tinh", ""],
]


def csv_bytes(rows: list[list[str]], bom: bool = False, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return ("\ufeff" if bom else "").encode() + out.getvalue().encode()


def xlsx_bytes(rows: list[list[str | int | None]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def post(running: RunningHub, token: str, data: bytes, multipart: bool = False, query: str = "") -> httpx.Response:
    async with httpx.AsyncClient() as http:
        url = f"{running.url}/api/questions/import{query}"
        headers = {"Authorization": f"Bearer {token}"}
        if multipart:
            return await http.post(url, headers=headers, files={"file": ("cau-hoi.xlsx", data)})
        return await http.post(url, headers=headers, content=data)


async def test_kon_tum_csv_imports_once(hub: RunningHub) -> None:
    token = hub.token("moderator")
    data = KON_TUM_CSV.read_bytes()
    first = (await post(hub, token, data)).json()
    assert first["ok"] and (first["rows"], first["imported"], first["unchanged"]) == (33, 33, 0)
    questions = hub.hub.state.questions
    assert len(questions) == 33 and {q.origin for q in questions.values()} == {"pre"}
    with KON_TUM_CSV.open(encoding="utf-8") as f:
        notes = {r["answer_note"] for r in csv.DictReader(f) if r["answer_note"]}
    assert {q.answer_note for q in questions.values() if q.answer_note} == notes
    events = [e for e in hub.hub.log.read(0) if e.type == "question.submit"]
    assert len(events) == 33 and {e.actor for e in events} == {token.split(".")[0]}
    again = (await post(hub, token, data)).json()
    assert again["ok"] and (again["imported"], again["unchanged"]) == (0, 33)
    assert [r["question"] for r in again["results"]] == [r["question"] for r in first["results"]]
    assert len(hub.hub.state.questions) == 33


async def test_xlsx_with_vietnamese_headers_and_names(hub: RunningHub) -> None:
    token = hub.token("admin")
    answer = (await post(hub, token, xlsx_bytes([VI_HEADER, *GOOD_VI]), multipart=True)).json()
    assert answer["ok"] and answer["imported"] == 2, answer
    first, second = (hub.hub.state.questions[r["question"]] for r in answer["results"])
    assert (first.topic, first.site, first.agency, first.answer_note) == (
        "training", "dak-ha", "sldtbxh", "Đã có kế hoạch năm 2024.")
    assert (second.topic, second.site, second.agency, second.delegate) == (
        "policy", "sa-thay", "bhxh", {"name": "A Tâm", "unit": ""})


async def test_bom_semicolons_and_rows_added_later(hub: RunningHub) -> None:
    """Excel's "CSV UTF-8" with ';' works, and a file with one row added imports only that row."""
    token = hub.token("moderator")
    rows = [VI_HEADER, GOOD_VI[0]]
    first = (await post(hub, token, csv_bytes(rows, bom=True, delimiter=";"))).json()
    assert first["imported"] == 1, first
    second = (await post(hub, token, csv_bytes([*rows, GOOD_VI[1]], bom=True, delimiter=";"))).json()
    assert (second["imported"], second["unchanged"]) == (1, 1)
    assert len(hub.hub.state.questions) == 2


async def test_identical_rows_are_two_questions(hub: RunningHub) -> None:
    token = hub.token("moderator")
    data = csv_bytes([VI_HEADER, GOOD_VI[1], GOOD_VI[1]])
    assert (await post(hub, token, data)).json()["imported"] == 2
    assert (await post(hub, token, data)).json()["unchanged"] == 2


@pytest.mark.parametrize("as_xlsx", [False, True])
async def test_bad_rows_are_each_reported_and_nothing_is_stored(hub: RunningHub, as_xlsx: bool) -> None:
    rows = [
        ["topic", "site", "delegate", "unit", "text", "agency", "answer_note"],
        ["training", "dak-ha", "Nguyễn Văn A", "", "Câu hỏi tốt.", "", ""],           # line 2: good
        ["training", "x", "Nguyễn Văn B", "", "Câu hỏi.", "", ""],                    # line 3
        ["no-topic", "dak-ha", "Nguyễn Văn C", "", "Câu hỏi.", "nobody", ""],         # line 4: two errors
        ["union", "dak-ha", "Nguyễn Văn D", "", "", "", ""],                          # line 5: no text
        ["union", "dak-ha", "Nguyễn Văn E", "", "x" * 2001, "", ""],                  # line 6: text too long
        ["union", "dak-ha", "N" * 201, "", "Câu hỏi.", "", ""],                       # line 7: name too long
        ["union", "dak-ha", "Nguyễn Văn G", "", "y" * 2000, "", ""],                  # line 8: good, at the limit
    ]
    data = xlsx_bytes(rows) if as_xlsx else csv_bytes(rows)
    response = await post(hub, hub.token("moderator"), data, multipart=as_xlsx)
    assert response.status_code == 422
    answer = response.json()
    assert not answer["ok"] and answer["imported"] == 0 and answer["rows"] == 7
    texts = [e["text"] for e in answer["errors"]]
    assert texts[:3] == ["dòng 3: unknown site 'x'", "dòng 4: unknown topic 'no-topic'", "dòng 4: unknown agency 'nobody'"]
    assert texts[3] == "dòng 5: text is empty"
    assert [e["line"] for e in answer["errors"]] == [3, 4, 4, 5, 6, 7]
    assert "2000" in texts[4] and "200" in texts[5]
    assert hub.hub.state.questions == {}


@pytest.mark.parametrize("data, fragment", [
    ("Nội dung,Đơn vị\nabc,def\n".encode(), "missing column(s) topic, site, delegate"),
    ("topic,site,delegate,text\n".encode("utf-16"), "not UTF-8"),
    (b"PK\x03\x04 not really a workbook", "not a readable XLSX"),
    (b"", "empty"),
])
async def test_unreadable_files_are_refused_whole(hub: RunningHub, data: bytes, fragment: str) -> None:
    response = await post(hub, hub.token("moderator"), data)
    assert response.status_code == 400 and fragment in response.json()["errors"][0]["message"]


async def test_only_moderators_import_and_dry_run_stores_nothing(hub: RunningHub) -> None:
    data = KON_TUM_CSV.read_bytes()
    assert (await post(hub, hub.token("registrar", site="dak-ha"), data)).status_code == 403
    assert (await post(hub, "nope.nope", data)).status_code == 401
    preview = (await post(hub, hub.token("moderator"), data, query="?dry_run=1")).json()
    assert preview["dry_run"] and len(preview["preview"]) == 33 and preview["preview"][0]["site"] == "tp-kon-tum"
    assert hub.hub.state.questions == {}


async def run_cli(hub: RunningHub, token: str, file: Path) -> tuple[int, dict]:
    async with spawn(str(Path(sys.executable).parent / "diemcau"), "import-questions", "--config",
                     str(ROOT / "config" / "kon-tum-2023.toml"), "--hub", hub.ws_url, "--token", token, str(file),
                     cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) as proc:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, json.loads(out) if out.strip() else {"stderr": err.decode()}


async def test_cli_imports_through_the_running_hub(hub: RunningHub, tmp_path: Path) -> None:
    token = hub.token("moderator")
    code, first = await run_cli(hub, token, KON_TUM_CSV)
    assert code == 0 and (first["imported"], first["unchanged"]) == (33, 0), first
    code, again = await run_cli(hub, token, KON_TUM_CSV)
    assert code == 0 and (again["imported"], again["unchanged"]) == (0, 33)
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx_bytes([VI_HEADER, GOOD_VI[0], ["other", "nowhere", "A", "", "B", "", ""]]))
    code, answer = await run_cli(hub, token, bad)
    assert code == 1 and [e["text"] for e in answer["errors"]] == ["dòng 3: unknown site 'nowhere'"]
    assert len(hub.hub.state.questions) == 33
