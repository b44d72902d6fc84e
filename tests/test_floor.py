"""The floor's rules over real websockets: counts, capacity, attribution, site binding, lengths,
deferral and written answers, speaking time, fair rotation, merges, search and duplicates."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from hub.questions.search import fold, similarity
from sites.client import CommandFailed, HubClient

from .conftest import ManualClock, RunningHub

DELEGATE = {"name": "Nguyễn Thị Lan", "unit": "Công ty Cao su Kon Tum"}


async def submit(client: HubClient, site: str, text: str = "Đề nghị hỗ trợ nhà ở cho công nhân.",
                 topic: str = "livelihood", **extra: Any) -> str:
    return (await client.call("question.submit", site=site, delegate=DELEGATE, topic=topic, text=text,
                              **extra))["question"]


async def get(running: RunningHub, path: str, token: str) -> Any:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{running.url}{path}", headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return response.json()


async def failure(client: HubClient, type_: str, **fields: Any) -> str:
    with pytest.raises(CommandFailed) as failed:
        await client.call(type_, **fields)
    return failed.value.code


async def test_counts_never_go_negative(hub: RunningHub) -> None:
    reg = await hub.client("registrar", site="dak-ha")
    await reg.call("attendance.set", site="dak-ha", category="workers", count=3)
    result = await reg.call("attendance.add", site="dak-ha", category="workers", delta=-5)
    assert result["count"] == 0 and result["present"] == 0
    assert await failure(reg, "attendance.set", site="dak-ha", category="workers", count=-1) == "invalid_format"
    assert hub.hub.state.sites["dak-ha"].attendance == {"workers": 0}


async def test_over_capacity_warns_in_the_answer_and_the_log(hub: RunningHub, caplog: pytest.LogCaptureFixture) -> None:
    reg = await hub.client("registrar", site="kon-ray")
    capacity = hub.config.sites[[s.id for s in hub.config.sites].index("kon-ray")].capacity
    assert capacity is not None
    at_capacity = await reg.call("attendance.set", site="kon-ray", category="workers", count=capacity)
    assert "warning" not in at_capacity
    with caplog.at_level(logging.WARNING, logger="diemcau.hub"):
        over = await reg.call("attendance.add", site="kon-ray", category="guests", delta=1)
    assert over["present"] == capacity + 1
    assert over["warning"] == f"over capacity: {capacity + 1} present, {capacity} seats"
    assert [r.getMessage() for r in caplog.records] == [f"site kon-ray: {over['warning']} (seq {over['seq']})"]


async def test_every_event_is_attributed_to_its_token(hub: RunningHub) -> None:
    reg = await hub.client("registrar", site="dak-ha")
    mod = await hub.client("moderator")
    await reg.call("attendance.add", site="dak-ha", category="workers", delta=10)
    qid = await submit(reg, "dak-ha")
    await mod.call("question.update", question=qid, status="queued")
    await mod.call("agency.attendance", agency="bhxh", status="head")
    actors = [(e.type, e.actor) for e in hub.hub.log.read(0)]
    reg_id, mod_id = reg.token.split(".")[0], mod.token.split(".")[0]
    assert actors == [("attendance.add", reg_id), ("question.submit", reg_id), ("question.update", mod_id),
                      ("agency.attendance", mod_id)]
    assert hub.hub.state.questions[qid].actor == reg_id


@pytest.mark.parametrize("type_, fields", [
    ("attendance.set", {"site": "kon-ray", "category": "workers", "count": 5}),
    ("attendance.add", {"site": "kon-ray", "category": "workers", "delta": 5}),
    ("question.submit", {"site": "kon-ray", "delegate": DELEGATE, "topic": "union", "text": "Câu hỏi."}),
    ("question.update", {"question": "q1", "status": "queued"}),
    ("floor.call", {"site": "dak-ha"}),
])
async def test_a_registrar_touches_only_its_own_site(hub: RunningHub, type_: str, fields: dict) -> None:
    reg = await hub.client("registrar", site="dak-ha")
    await submit(reg, "dak-ha")
    assert await failure(reg, type_, **fields) == "unauthorized"
    assert hub.hub.state.sites["kon-ray"].attendance == {} and len(hub.hub.state.questions) == 1


@pytest.mark.parametrize("role, origin, taken", [
    ("registrar", "floor", False), ("registrar", "pre", False), ("moderator", "floor", True), ("moderator", "pre", True),
])
async def test_a_closed_meeting_takes_no_more_questions_from_the_halls(hub: RunningHub, role: str, origin: str,
                                                                       taken: bool) -> None:
    moderator = await hub.client("moderator")
    await submit(moderator, "dak-ha")  # asked while the meeting was on: kept, and still movable
    await moderator.call("event.phase", phase="closed")
    sender = moderator if role == "moderator" else await hub.client("registrar", site="dak-ha")
    frame = await sender.send("question.submit", site="dak-ha", delegate=DELEGATE, topic="union",
                              text="Đề nghị tăng phụ cấp cho cán bộ công đoàn cơ sở.", origin=origin)
    assert frame["success"] is taken, frame
    if not taken:
        assert frame["error"] == {"code": "conflict",
                                  "message": "the meeting is closed: it takes no more questions from the floor"}
    assert len(hub.hub.state.questions) == 1 + taken


@pytest.mark.parametrize("text, name, unit, ok", [
    ("x" * 2000, "N" * 200, "U" * 200, True),
    ("x" * 2001, "Nguyễn Văn A", "", False),
    ("Câu hỏi.", "N" * 201, "", False),
    ("Câu hỏi.", "Nguyễn Văn A", "U" * 201, False),
    ("", "Nguyễn Văn A", "", False),
    ("Câu hỏi.", "", "", False),
])
async def test_text_and_name_lengths(hub: RunningHub, text: str, name: str, unit: str, ok: bool) -> None:
    reg = await hub.client("registrar", site="dak-ha")
    frame = await reg.send("question.submit", site="dak-ha", delegate={"name": name, "unit": unit},
                           topic="union", text=text)
    assert frame["success"] is ok, frame
    if not ok:
        assert frame["error"]["code"] == "invalid_format"
    assert len(hub.hub.state.questions) == int(ok)


async def test_deferred_carries_agency_and_due_date_until_the_written_answer(start_hub, clock: ManualClock) -> None:
    running = await start_hub(clock=clock)
    config = running.config
    clock.now = config.event.starts_at.timestamp() + 3600
    mod = await running.client("moderator")
    qid = await submit(mod, "dak-ha")
    assert await failure(mod, "question.update", question=qid, status="deferred") == "conflict"
    await mod.call("question.update", question=qid, status="deferred", agency="sxd")
    due = (config.event.date + dt.timedelta(days=config.deadlines.written_answer_days)).isoformat()
    snapshot = await get(running, "/api/state", running.token("chair"))
    q = next(q for q in snapshot["questions"] if q["id"] == qid)
    assert (q["status"], q["agency"], q["due"]) == ("deferred", "sxd", due)
    other = await running.client("agency", agency="bhxh")
    written = {"question": qid, "kind": "written", "text": "Sở Xây dựng trả lời bằng văn bản.",
               "reference": "1234/SXD-QLN", "date": "2023-12-04"}
    assert await failure(other, "question.answer", **written) == "unauthorized"
    sxd = await running.client("agency", agency="sxd")
    assert (await sxd.call("question.answer", **written))["status"] == "answered_written"
    mine = await get(running, "/api/state", sxd.token)
    assert [(q["id"], q["status"], q["written"]["reference"], q["written"]["date"]) for q in mine["questions"]] == [
        (qid, "answered_written", "1234/SXD-QLN", "2023-12-04")]
    assert await failure(sxd, "question.answer", **written) == "conflict"


async def test_speaking_time_per_question_and_per_site(start_hub, clock: ManualClock) -> None:
    running = await start_hub(clock=clock)
    mod = await running.client("moderator")
    plan = [("dak-ha", 100.0), ("dak-ha", 50.0), ("kon-ray", 30.0)]
    qids = [await submit(mod, site) for site, _ in plan]
    for qid, (site, seconds) in zip(qids, plan):
        await mod.call("floor.call", site=site, question=qid)
        clock.advance(seconds)
        await mod.call("question.update", question=qid, status="answered")
    state = await get(running, "/api/state", running.token("viewer"))
    assert {q["id"]: q["spoken_seconds"] for q in state["questions"]} == dict(zip(qids, (s for _, s in plan)))
    assert state["floor"]["by_site"] == {"dak-ha": {"turns": 2, "seconds": 150.0}, "kon-ray": {"turns": 1, "seconds": 30.0}}
    assert state["floor"]["site"] is None


async def test_suggested_next_rotates_across_sites(hub: RunningHub) -> None:
    """Taking the suggestion every time, no site speaks a third time while another with queued questions waits."""
    mod = await hub.client("moderator")
    sites = ["dak-ha"] * 5 + ["kon-ray"] + ["sa-thay"] * 3
    qids = {await submit(mod, site): site for site in sites}
    for qid in qids:
        await mod.call("question.update", question=qid, status="queued")
    turns = {site: 0 for site in set(sites)}
    order = []
    chair = hub.token("chair")
    while (suggested := (await get(hub, "/api/state", chair))["floor"]["next"]) is not None:
        site = qids[suggested]
        waiting = {s for q, s in qids.items() if hub.hub.state.questions[q].status == "queued"}
        assert turns[site] == min(turns[s] for s in waiting), (order, site)
        await mod.call("floor.call", site=site, question=suggested)
        await mod.call("question.update", question=suggested, status="answered")
        turns[site] += 1
        order.append(site)
    assert order == ["dak-ha", "kon-ray", "sa-thay", "dak-ha", "sa-thay", "dak-ha", "sa-thay", "dak-ha", "dak-ha"]


async def test_merge_keeps_every_asker_and_site(hub: RunningHub) -> None:
    mod = await hub.client("moderator")
    main = await submit(mod, "dak-ha")
    dup = await submit(mod, "kon-ray")
    older = await submit(mod, "sa-thay")
    await mod.call("question.update", question=older, merged_into=dup)
    await mod.call("question.update", question=dup, merged_into=main)
    state = await get(hub, "/api/state", hub.token("chair"))
    questions = {q["id"]: q for q in state["questions"]}
    assert [(a["question"], a["site"]) for a in questions[main]["co_askers"]] == [(dup, "kon-ray"), (older, "sa-thay")]
    assert (questions[dup]["status"], questions[dup]["merged_into"]) == ("merged", main)
    assert (await mod.call("floor.call", site="sa-thay", question=main))["site"] == "sa-thay"
    assert await failure(mod, "floor.call", site="tinh", question=main) == "conflict"


async def test_merged_status_with_merged_into_is_the_same_as_merged_into_alone(hub: RunningHub) -> None:
    mod = await hub.client("moderator")
    main, dup, again, lone = [await submit(mod, site) for site in ("dak-ha", "kon-ray", "sa-thay", "tinh")]
    said = await mod.call("question.update", question=dup, status="merged", merged_into=main)
    alone = await mod.call("question.update", question=again, merged_into=main)
    assert said["status"] == alone["status"] == "merged"
    stored = {e.seq: e.data for e in hub.hub.log.read(0)}
    assert stored[said["seq"]] == {"question": dup, "merged_into": main}  # the same event merged_into alone makes
    assert stored[alone["seq"]] == {"question": again, "merged_into": main}
    assert [a["question"] for a in hub.hub.state.questions[main].co_askers] == [dup, again]

    with pytest.raises(CommandFailed) as failed:
        await mod.call("question.update", question=lone, status="merged")
    assert failed.value.code == "invalid_format" and "merged_into" in failed.value.message
    with pytest.raises(CommandFailed) as failed:
        await mod.call("question.update", question=lone, status="queued", merged_into=main)
    assert failed.value.code == "invalid_format" and "merged_into" in failed.value.message
    assert hub.hub.state.questions[lone].status == "submitted"


def test_fold_drops_diacritics_d_bar_apostrophes_and_hyphens() -> None:
    assert fold("ĐÀO TẠO nghề, Đắk Hà, Ia H'Drai") == "dao tao nghe, dak ha, ia hdrai"
    assert fold("Ia H’Drai, Sở LĐ-TB&XH") == "ia hdrai, so ldtb&xh"
    assert similarity("Đề nghị xây nhà ở xã hội cho công nhân", "de nghi xay nha o xa hoi cho cong nhan") == 1.0


async def test_search_without_diacritics_and_filters(hub: RunningHub) -> None:
    mod = await hub.client("moderator")
    training = await submit(mod, "dak-ha", "Đề nghị hỗ trợ kinh phí đào tạo nghề.", "training", agency="sldtbxh")
    housing = await submit(mod, "kon-ray", "Công nhân chưa có nhà ở xã hội.", "livelihood", agency="sxd")
    await mod.call("question.update", question=housing, status="queued")
    chair = hub.token("chair")

    async def found(query: str, token: str = chair) -> list[str]:
        return [q["id"] for q in (await get(hub, f"/api/questions?{query}", token))["questions"]]

    assert await found("q=dao tao") == [training]
    assert await found("q=ĐÀO TẠO nghề") == [training]
    assert await found("q=nha o xa hoi") == [housing]
    assert await found("q=Lan") == [training, housing]  # the delegate's name
    assert await found("q=dao tao nha") == []
    assert await found("topic=livelihood") == [housing]
    assert await found("status=queued,on_air") == [housing]
    assert await found("site=dak-ha&site=kon-ray") == [training, housing]
    assert await found("", hub.token("agency", agency="sxd")) == [housing]


@pytest.mark.parametrize("query, wanted", [
    ("hdrai", "road"), ("ia hdrai", "road"), ("h'drai", "road"), ("Ia H’Drai", "road"), ("H-Drai", "road"),
    ("ldtb", "labour"), ("LĐ-TB&XH", "labour"), ("ld tb", "labour"),
])
async def test_search_ignores_apostrophes_and_hyphens(hub: RunningHub, query: str, wanted: str) -> None:
    mod = await hub.client("moderator")
    ids = {"road": await submit(mod, "ia-hdrai", "Đường đến nơi làm việc của công nhân ở Ia H'Drai xuống cấp."),
           "labour": await submit(mod, "dak-ha", "Đề nghị Sở LĐ-TB&XH hỗ trợ đào tạo nghề.", "training")}
    found = await get(hub, f"/api/questions?{urlencode({'q': query})}", hub.token("chair"))
    assert [q["id"] for q in found["questions"]] == [ids[wanted]]


async def test_similar_questions_suggest_the_duplicate(hub: RunningHub) -> None:
    mod = await hub.client("moderator")
    first = await submit(mod, "tp-kon-tum", "Công nhân khu công nghiệp Hòa Bình chưa có nhà ở xã hội; đề nghị tỉnh "
                                            "sớm triển khai dự án nhà ở cho công nhân.")
    await submit(mod, "dak-ha", "Thu nhập của công nhân nông trường cà phê thấp và không ổn định.")
    again = await submit(mod, "ngoc-hoi", "Cong nhan khu cong nghiep Hoa Binh can nha o xa hoi, de nghi tinh lam som.")
    elsewhere = await submit(mod, "sa-thay", "Khu công nghiệp Hòa Bình chưa có nhà ở xã hội cho công nhân.",
                             topic="other")
    token = hub.token("moderator")
    answer = await get(hub, f"/api/questions/{again}/similar", token)
    assert [q["id"] for q in answer["similar"]] == [first] and 0 < answer["similar"][0]["score"] <= 1
    wider = await get(hub, f"/api/questions/{again}/similar?all_topics=1", token)
    assert {q["id"] for q in wider["similar"]} == {first, elsewhere}
    scores = [q["score"] for q in wider["similar"]]
    assert scores == sorted(scores, reverse=True)
    async with httpx.AsyncClient() as http:
        missing = await http.get(f"{hub.url}/api/questions/q999/similar", headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 404
