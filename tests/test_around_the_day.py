"""Before and after the day over real websockets: questions collected, assigned, drafted by agencies through
their own tokens, the programme on the day, deferred questions answered in writing, deadlines on a ManualClock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp
import pytest

from sites.client import CommandFailed, HubClient

from .conftest import ManualClock, RunningHub, StartHub

TZ = "Asia/Ho_Chi_Minh"


def local(config: Any, day: str, clock_time: str = "09:00") -> float:
    """Epoch seconds of a local date and time in the event's zone."""
    return dt.datetime.fromisoformat(f"{day}T{clock_time}").replace(tzinfo=config.event.tz).timestamp()


def question(site: str, text: str, topic: str = "livelihood") -> dict[str, Any]:
    return {"site": site, "topic": topic, "text": text, "origin": "pre",
            "delegate": {"name": "Y Điệp", "unit": "Công ty Cao su Kon Tum"}}


async def deadlines(running: RunningHub, token: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{running.url}/api/deadlines", headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def state(running: RunningHub, token: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{running.url}/api/state", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        return await response.json()


def row(report: dict[str, Any], agency: str) -> dict[str, Any]:
    return next(r for r in report["agencies"] if r["id"] == agency)


async def failure(client: HubClient, type_: str, **fields: Any) -> str:
    with pytest.raises(CommandFailed) as failed:
        await client.call(type_, **fields)
    return failed.value.code


@pytest.mark.parametrize("phase, role, allowed", [
    ("setup", "registrar", True), ("rehearsal", "registrar", True), ("live", "registrar", False),
    ("live", "moderator", True), ("closed", "moderator", True),  # a registrar's in closed: test_floor.py
])
async def test_pre_questions_from_registrars_only_before_the_day(hub: RunningHub, phase: str, role: str,
                                                                 allowed: bool) -> None:
    moderator = await hub.client("moderator")
    if phase != "setup":
        await moderator.call("event.phase", phase=phase)
    sender = moderator if role == "moderator" else await hub.client("registrar", site="dak-to")
    fields = question("dak-to", "Đề nghị hỗ trợ tiền thuê nhà trọ cho công nhân.")
    if allowed:
        result = await sender.call("question.submit", **fields)
        assert hub.hub.state.questions[result["question"]].origin == "pre"
    else:
        assert await failure(sender, "question.submit", **fields) == "conflict"
        assert not hub.hub.state.questions
        floor = await sender.call("question.submit", **{**fields, "origin": "floor"})
        assert hub.hub.state.questions[floor["question"]].origin == "floor"


async def test_the_whole_cycle(start_hub: StartHub, config: Any) -> None:
    clock = ManualClock(local(config, "2023-10-10"))
    running = await start_hub(clock=clock)
    moderator = await running.client("moderator")
    dak_ha = await running.client("registrar", site="dak-ha")
    kon_ray = await running.client("registrar", site="kon-ray")

    # Before the day: districts hand in what they collected; the secretariat adds the province's own.
    q1 = (await dak_ha.call("question.submit", **question("dak-ha", "Đề nghị xây nhà ở xã hội cho công nhân.")))["question"]
    assert await failure(dak_ha, "question.submit", **question("kon-ray", "Câu hỏi của điểm cầu khác.")) == "unauthorized"
    q2 = (await kon_ray.call("question.submit", **question("kon-ray", "Chậm chốt sổ BHXH khi nghỉ việc.",
                                                             topic="procedures")))["question"]
    clock.advance(8 * 86400)  # 18 October: one district is late with its collection
    q3 = (await moderator.call("question.submit", **question("tinh", "Hỗ trợ học nghề cho lao động nữ.",
                                                               topic="training")))["question"]
    status, report = await deadlines(running, running.token("moderator"))
    assert status == 200
    collection = next(d for d in report["deadlines"] if d["id"] == "collection")
    assert (collection["passed"], collection["after_deadline"]) == (True, 1)
    for qid, agency in ((q1, "sldtbxh"), (q2, "bhxh"), (q3, "sldtbxh")):
        await moderator.call("question.update", question=qid, agency=agency)

    # Agencies see only their own questions and draft answers to them.
    labour = await running.client("agency", agency="sldtbxh", subscribe=False)
    insurance = await running.client("agency", agency="bhxh", subscribe=False)
    for client, own in ((labour, {q1, q3}), (insurance, {q2})):
        await client.call("subscribe")
        snapshot = await client.next_push(lambda f: f["type"] == "snapshot")
        assert {q["id"] for q in snapshot["state"]["questions"]} == own
        http_state = await state(running, client.token)
        assert {q["id"] for q in http_state["questions"]} == own
    clock.advance(4 * 86400)  # 22 October
    await labour.call("question.answer", question=q1, kind="draft", text="Dự thảo: tỉnh đang quy hoạch 3 dự án.")
    pushed = await labour.next_push(lambda f: any(q["id"] == q1 and q["draft"] for q in f.get("questions", [])))
    assert {q["id"] for q in pushed["questions"]} <= {q1, q3} and not pushed["events"]
    assert await failure(labour, "question.answer", question=q2, kind="draft", text="Không phải của Sở.") == "unauthorized"
    assert await failure(insurance, "question.answer", question=q3, kind="draft", text="x") == "unauthorized"
    await insurance.call("question.answer", question=q2, kind="draft", text="Dự thảo: BHXH tỉnh đã đôn đốc.")
    pushed = await insurance.next_push(lambda f: any(q["id"] == q2 and q["draft"] for q in f.get("questions", [])))
    assert {q["id"] for q in pushed["questions"]} == {q2}
    assert running.hub.state.questions[q2].draft["by"] == insurance.token.split(".")[0]
    assert running.hub.state.questions[q3].draft is None

    # 26 October: the draft deadline (25th) has passed and the Department still owes one draft.
    clock.advance(4 * 86400)
    status, report = await deadlines(running, running.token("chair"))
    assert status == 200 and report["today"] == "2023-10-26"
    assert row(report, "sldtbxh")["to_draft"] == 2 and row(report, "sldtbxh")["drafted"] == 1
    assert row(report, "sldtbxh")["late"] == ["draft_answers"] and row(report, "bhxh")["late"] == []
    assert report["late_agencies"] == ["sldtbxh"]
    assert next(d for d in report["deadlines"] if d["id"] == "draft_answers")["missing"] == 1
    await labour.call("question.answer", question=q3, kind="draft", text="Dự thảo muộn.")
    status, report = await deadlines(running, running.token("moderator"))
    assert row(report, "sldtbxh")["drafted"] == 2 and row(report, "sldtbxh")["drafted_on_time"] == 1
    assert report["late_agencies"] == []

    # The day: the programme runs three minutes late, then later still.
    clock.now = config.event.starts_at.timestamp() - 600
    await moderator.call("event.phase", phase="live")
    assert await failure(dak_ha, "question.submit", **question("dak-ha", "Muộn rồi.")) == "conflict"
    clock.now = config.event.starts_at.timestamp() + 180
    await moderator.call("agenda.advance", item="khai-mac")
    clock.advance(15 * 60)  # the opening took 15 minutes instead of 10
    await moderator.call("agenda.advance", item="bao-cao")
    agenda = (await state(running, running.token("chair")))["agenda"]
    assert agenda["current"]["id"] == "bao-cao" and agenda["behind_seconds"] == (3 + 15 - 10) * 60
    opening = agenda["items"][0]
    assert (opening["planned_start"], opening["started"]) == ("2023-11-24T07:30:00+07:00", "2023-11-24T07:33:00+07:00")
    assert opening["actual_minutes"] == 15 and opening["late_seconds"] == 180
    remaining = sum(item.minutes for item in config.agenda[1:])
    assert agenda["forecast_end"] == dt.datetime.fromtimestamp(clock.now + remaining * 60, config.event.tz).isoformat()
    for qid in (q1, q2, q3):
        await moderator.call("question.update", question=qid, status="deferred")
    assert {running.hub.state.questions[q].due for q in (q1, q2, q3)} == {"2023-12-09"}
    await moderator.call("event.phase", phase="closed")

    # After it: written answers come back; one is late.
    clock.now = local(config, "2023-12-05")
    answer = {"kind": "written", "text": "Sở LĐ-TB&XH trả lời như sau...", "reference": "2381/SLĐTBXH-VL",
              "date": "2023-12-04"}
    assert await failure(insurance, "question.answer", question=q1, **answer) == "unauthorized"
    result = await labour.call("question.answer", question=q1, **answer)
    assert result["status"] == "answered_written"
    written = running.hub.state.questions[q1].written
    assert (written["reference"], written["date"]) == ("2381/SLĐTBXH-VL", "2023-12-04")
    assert await failure(labour, "question.answer", question=q1, **answer) == "conflict"
    clock.now = local(config, "2023-12-10")
    status, report = await deadlines(running, running.token("moderator"))
    assert (row(report, "sldtbxh")["deferred"], row(report, "sldtbxh")["written"], row(report, "sldtbxh")["overdue"]) == (2, 1, 1)
    assert row(report, "bhxh")["due"] == "2023-12-09" and row(report, "bhxh")["late"] == ["written_answers"]
    assert report["late_agencies"] == ["sldtbxh", "bhxh"]
    await insurance.call("question.answer", question=q2, **{**answer, "reference": "2456/BHXH-TT"})
    status, own = await deadlines(running, insurance.token)
    assert status == 200 and [r["id"] for r in own["agencies"]] == ["bhxh"] and own["late_agencies"] == []
    assert all(set(d) == {"id", "date", "passed"} for d in own["deadlines"])


@pytest.mark.parametrize("role, code", [("registrar", 403), ("viewer", 403), ("technician", 403), (None, 401)])
async def test_deadlines_need_the_right_token(hub: RunningHub, role: str | None, code: int) -> None:
    token = hub.token(role, site="dak-ha" if role in ("registrar", "technician") else None) if role else "nope.nope"
    status, _ = await deadlines(hub, token)
    assert status == code
