"""The summary report (.docx) and the agencies' letters say what the report's JSON says, figure by figure.

Both come from one fold of the event log (`hub.report.build_report`); this replays the Kon Tum day, then
reads the .docx back with python-docx and checks attendance, questions per topic and outcome, agencies
present and the written-answer lists against `/api/report` and against the replay's own figures.
"""

from __future__ import annotations

import io
import re
from typing import Any

import docx
import orjson

from hub.config import Config

from .conftest import ManualClock, RunningHub, StartHub
from .kontum_day import WRITTEN, replay
from .test_documents import download, texts

WRITING = ("deferred", "answered_written")


def number(text: str) -> int:
    """`2.300` as the documents write it."""
    return int(text.replace(".", ""))


def cells(table: Any) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows[1:]]


def columns(group: dict[str, Any]) -> list[int]:
    """A report outcome group as the document's columns: total, live, in writing, written received, the rest."""
    o = group["outcomes"]
    writing = sum(o[s] for s in WRITING)
    return [group["total"], o["answered"], writing, o["answered_written"], group["total"] - o["answered"] - writing]


async def test_summary_document_carries_the_report_figures(start_hub: StartHub, config: Config) -> None:
    running: RunningHub = await start_hub(clock=ManualClock())
    day = await replay(running, running.hub.clock)  # type: ignore[arg-type]
    report = orjson.loads(await download(running, "/api/report", role="chair"))
    summary = docx.Document(io.BytesIO(await download(running, "/api/documents/bao-cao-ket-qua.docx?date=2023-12-05")))
    body = texts(summary)

    totals = report["totals"]
    assert totals["present"] == day.total == 2300 and totals["expected"] == config.expected_total
    line = next(p for p in body if p.startswith("Tổng số đại biểu tham dự:"))
    present, expected = re.search(r"tham dự: ([\d.]+)/([\d.]+) ", line).groups()  # type: ignore[union-attr]
    assert (present, number(expected)) == ("2.300", totals["expected"])
    assert f"(đạt {totals['percent']:.1f}%)".replace(".", ",") in line
    categories = [re.fullmatch(r"- (.+): ([\d.]+) người;", p) for p in body if p.endswith(" người;")]
    assert [(m[1], number(m[2])) for m in categories if m] == \
        [(c["name"], c["present"]) for c in report["attendance"]["categories"]]
    assert sum(c["present"] for c in report["attendance"]["categories"]) == 2300
    sites = cells(summary.tables[1])
    assert [[s[1], *map(number, s[2:5])] for s in sites[:-1]] == \
        [[s["name"], s["expected"], s["present"], s["peak"]] for s in report["attendance"]["sites"]]
    assert [number(x) for x in sites[-1][2:4]] == [totals["expected"], 2300]

    questions = report["questions"]
    assert questions["totals"]["total"] == sum(day.by_topic.values())
    topics = cells(summary.tables[2])
    assert [[t[1], *map(int, t[2:])] for t in topics[:-1]] == \
        [[t["name"], *columns(t)] for t in questions["by_topic"]]
    assert list(map(int, topics[-1][2:])) == columns(questions["totals"])
    outcomes = questions["totals"]["outcomes"]
    assert outcomes["answered"] == day.by_status.get("answered", 0) and outcomes["merged"] == len(day.merged)
    total, live, writing, written, _ = columns(questions["totals"])
    assert any(f"nhận {total} ý kiến" in p and f"trực tiếp {live} ý kiến" in p and f"văn bản {writing} ý kiến" in p
               and f"đã có văn bản trả lời {written})" in p for p in body)

    counts = report["agencies"]["counts"]
    came = counts["head"] + counts["deputy"]
    assert came == sum(s in ("head", "deputy") for s in day.agencies.values()) and came < len(config.agencies)
    assert any(p.startswith(f"Có {came}/{len(config.agencies)} cơ quan, đơn vị tham dự") for p in body)
    agencies = {row[1]: row for row in cells(summary.tables[3])}
    in_writing = {g["agency"]: g["count"] for g in report["deferred"]}
    for a in report["agencies"]["rows"]:
        row = agencies[a["name"]]
        assert row[2].startswith({"head": "Thủ trưởng dự", "deputy": "Cấp phó dự", "absent": "Vắng"}[a["status"]])
        assert int(row[4]) == sum(q["agency"] == a["agency"] for q in questions["rows"])
        assert int(row[5]) == in_writing.get(a["agency"], 0)

    written = [p for p in body[body.index("V. NỘI DUNG CHUYỂN TRẢ LỜI BẰNG VĂN BẢN") + 1:] if p.startswith("- ")]
    assert [re.match(r"- (.+): (\d+) ý kiến, đã trả lời (\d+)", p).groups() for p in written] == \
        [(g["name"], str(g["count"]), str(g["received"])) for g in report["written"]["rows"]]  # type: ignore[union-attr]
    assert report["written"]["received"] == len(day.written) >= 1


async def test_letters_list_the_report_deferred_questions(start_hub: StartHub) -> None:
    running: RunningHub = await start_hub(clock=ManualClock())
    day = await replay(running, running.hub.clock)  # type: ignore[arg-type]
    report = orjson.loads(await download(running, "/api/report"))
    groups = [g for g in report["deferred"] if g["agency"]]
    assert {g["agency"] for g in groups} == set(day.deferred_by_agency) | {WRITTEN["agency"]}
    for group in groups:
        letter = docx.Document(io.BytesIO(await download(running, f"/api/documents/cong-van-{group['agency']}.docx")))
        rows = cells(letter.tables[1])
        assert [(r[1], r[4]) for r in rows] == [(q["site_name"], q["text"]) for q in group["questions"]]
        assert any(f"{group['name']} {group['count']} ý kiến" in p for p in texts(letter))
