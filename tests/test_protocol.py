"""The websocket protocol over a real socket: auth, the envelope, every error code, idempotency, resume."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

import aiohttp
import pytest
import websockets

from hub.config import Config
from hub.core import views
from hub.log.sqlite import SQLiteLog
from sites.client import AuthFailed, HubClient

from .conftest import ManualClock, RunningHub, StartHub

QUESTION = {"site": "dak-ha", "delegate": {"name": "Nguyễn Thị Lan", "unit": "Công ty Cao su Kon Tum"},
            "topic": "livelihood", "text": "Đề nghị hỗ trợ nhà ở cho công nhân khu công nghiệp Hòa Bình."}


async def test_auth_ok_names_role_and_site(hub: RunningHub) -> None:
    client = await hub.client("registrar", site="dak-ha")
    assert client.identity == {"type": "auth_ok", "role": "registrar", "site": "dak-ha", "agency": None,
                               "shared": ["event", "totals", "floor", "agenda", "agencies", "timeline_tail"],
                               "node": None, "nodes": []}


@pytest.mark.parametrize("first", [
    {"type": "auth", "token": "nope.nope"},
    {"type": "auth", "token": 42},
    {"type": "hello"},
    [1, 2],
])
async def test_bad_auth_is_refused_and_closed(hub: RunningHub, first: object) -> None:
    async with websockets.connect(hub.ws_url) as ws:
        await ws.send(json.dumps(first))
        reply = json.loads(await ws.recv())
        assert reply["type"] == "auth_invalid" and reply["message"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 1008


async def test_revoked_token_cannot_connect_and_is_disconnected(hub: RunningHub) -> None:
    client = await hub.client("viewer")
    hub.tokens.revoke(client.token.split(".")[0])
    await asyncio.wait_for(client.closed.wait(), 5)
    with pytest.raises(AuthFailed):
        await HubClient(hub.ws_url, client.token).connect()


async def test_exactly_one_answer_per_id_in_order(hub: RunningHub) -> None:
    client = await hub.client("registrar", site="dak-ha")
    frames = await asyncio.gather(*[
        client.send("attendance.add", site="dak-ha", category="workers", delta=1) for _ in range(50)])
    assert [f["success"] for f in frames] == [True] * 50
    assert sorted(f["result"]["count"] for f in frames) == list(range(1, 51))
    assert all(isinstance(f["result"]["seq"], int) for f in frames)


@pytest.mark.parametrize("frame, code", [
    ({"id": 1, "type": "no.such"}, "unknown_command"),
    ({"id": 2, "type": "attendance.set", "site": "dak-ha", "category": "workers", "count": -1, "op_id": "x"},
     "invalid_format"),
    ({"id": 3, "type": "attendance.set", "site": "dak-ha", "category": "workers", "count": "5", "op_id": "x"},
     "invalid_format"),
    ({"id": 4, "type": "attendance.set", "site": "dak-ha", "category": "workers", "count": 5}, "invalid_format"),
    ({"id": 5, "type": "attendance.set", "site": "dak-ha", "category": "nobody", "count": 5, "op_id": "y"},
     "not_found"),
    ({"id": 6, "type": "attendance.set", "site": "kon-ray", "category": "workers", "count": 5, "op_id": "z"},
     "unauthorized"),
    ({"id": 7, "type": "event.phase", "phase": "live", "op_id": "p"}, "unauthorized"),
    ({"id": 8, "type": "attendance.set", "site": "dak-ha", "category": "workers", "count": 5, "op_id": "w",
      "extra": 1}, "invalid_format"),
    ({"id": 9, "type": "attendance.set", "site": "dak-ha", "category": "workers", "count": 10**30, "op_id": "v"},
     "invalid_format"),
])
async def test_error_codes(hub: RunningHub, frame: dict, code: str) -> None:
    client = await hub.client("registrar", site="dak-ha")
    msg_id = frame["id"]
    await client.send_raw(json.dumps(frame))
    answer = await client.next_push(lambda f: f.get("id") == msg_id)
    assert answer["success"] is False and answer["error"]["code"] == code, answer
    assert answer["error"]["message"]


async def test_unknown_site_is_not_found_for_unbound_roles(hub: RunningHub) -> None:
    moderator = await hub.client("moderator")
    answer = await moderator.send("question.submit", **{**QUESTION, "site": "atlantis"})
    assert answer["error"]["code"] == "not_found"


async def test_malformed_frames_get_errors_and_the_connection_stays(hub: RunningHub) -> None:
    client = await hub.client("viewer")
    for bad in ["not json", "[1,2]", '{"type": "ping"}', '{"id": "7", "type": "ping"}', '{"id": true, "type": "ping"}']:
        await client.send_raw(bad)
        answer = await client.next_push(lambda f: f.get("type") == "result")
        assert answer["success"] is False and answer["error"]["code"] == "invalid_format", (bad, answer)
    await client.send_raw('{"id": 9007199254740992, "type": "ping"}')  # 2**53: a browser cannot hold it exactly
    answer = await client.next_push(lambda f: f.get("type") == "result")
    assert answer["id"] is None and "within ±2^53" in answer["error"]["message"] and "past 2^53" in answer["error"]["message"]
    await client.send_raw(b"\x00\x01binary")
    answer = await client.next_push(lambda f: f.get("type") == "result")
    assert "binary" in answer["error"]["message"]
    assert (await client.call("ping"))["now"] > 0


async def test_oversized_frame_refused(hub: RunningHub) -> None:
    client = await hub.client("moderator")
    answer = await client.send("question.submit", **{**QUESTION, "text": "x" * 70_000})
    assert answer["error"]["code"] == "invalid_format" and "limit" in answer["error"]["message"]
    await client.send_raw("y" * (hub.config.limits.max_frame_bytes * 5))
    await asyncio.wait_for(client.closed.wait(), 5)
    assert client.ws.close_code == 1009


async def test_question_text_limit(hub: RunningHub) -> None:
    client = await hub.client("moderator")
    answer = await client.send("question.submit", **{**QUESTION, "text": "đ" * 2001})
    assert answer["error"]["code"] == "invalid_format" and "text" in answer["error"]["message"]


async def test_same_op_id_returns_first_answer_and_changes_nothing(hub: RunningHub) -> None:
    client = await hub.client("registrar", site="dak-ha")
    first = await client.call("attendance.add", site="dak-ha", category="workers", delta=5, op_id="retry-1")
    again = await client.call("attendance.add", site="dak-ha", category="workers", delta=5, op_id="retry-1")
    assert first == again and first["count"] == 5
    assert hub.hub.state.sites["dak-ha"].attendance["workers"] == 5
    assert hub.hub.log.count() == 1


async def test_rate_limit_for_site_tokens_not_admin(hub: RunningHub) -> None:
    registrar = await hub.client("registrar", site="dak-ha")
    answers = await asyncio.gather(*[registrar.send("ping") for _ in range(120)])
    codes = [a["error"]["code"] for a in answers if not a["success"]]
    assert codes and set(codes) == {"rate_limited"}
    admin = await hub.client("admin")
    answers = await asyncio.gather(*[admin.send("ping") for _ in range(300)])
    assert all(a["success"] for a in answers)


async def test_flooding_client_is_closed_with_reason(hub: RunningHub) -> None:
    viewer = await hub.client("viewer")
    for _ in range(400):
        await viewer.send_raw('{"id": 1, "type": "ping"}')
    await asyncio.wait_for(viewer.closed.wait(), 5)
    assert viewer.ws.close_code == 1008 and "rate" in viewer.ws.close_reason


async def test_subscribe_pushes_each_change(hub: RunningHub) -> None:
    chair = await hub.client("chair", subscribe=True)
    registrar = await hub.client("registrar", site="kon-plong")
    result = await registrar.call("attendance.set", site="kon-plong", category="workers", count=120)
    frame = await chair.next_push(lambda f: f["type"] == "event" and f["seq"] >= result["seq"])
    site = next(s for s in frame["sites"] if s["id"] == "kon-plong")
    assert site["attendance"]["workers"] == 120 and frame["totals"]["attendance"] == 120
    assert [e["type"] for e in frame["events"]] == ["attendance.set"]


async def test_pushes_carry_only_the_shared_parts_that_changed(hub: RunningHub) -> None:
    chair = await hub.client("chair", subscribe=True)
    registrar = await hub.client("registrar", site="kon-plong")
    moderator = await hub.client("moderator")

    async def push_after(result: dict) -> dict:
        return await chair.next_push(lambda f: f["type"] == "event" and f["seq"] >= result["seq"])

    first = await push_after(await registrar.call("attendance.set", site="kon-plong", category="workers", count=120))
    assert {"event", "totals", "floor", "agenda", "agencies"} <= first.keys()  # the first after subscribing: all
    second = await push_after(await registrar.call("attendance.set", site="kon-plong", category="workers", count=130))
    assert second["totals"]["attendance"] == 130
    assert not {"event", "floor", "agenda", "agencies"} & second.keys()
    third = await push_after(await moderator.call("floor.call", site="kon-plong"))
    assert third["floor"]["site"] == "kon-plong" and "totals" not in third

    late = await hub.client("viewer", subscribe=True)  # whatever it missed, its first push is whole again
    fourth = await registrar.call("attendance.set", site="kon-plong", category="workers", count=140)
    pushed = await late.next_push(lambda f: f["type"] == "event" and f["seq"] >= fourth["seq"])
    assert {"event", "totals", "floor", "agenda", "agencies"} <= pushed.keys()
    assert pushed["floor"]["site"] == "kon-plong" and pushed["totals"]["attendance"] == 140


async def test_auth_ok_lists_exactly_the_shared_parts_the_hub_pushes(hub: RunningHub) -> None:
    """The pages merge the parts auth_ok lists, so the list is the hub's own, not a copy that can drift."""
    chair = await hub.client("chair", subscribe=True)
    listed = chair.identity["shared"]
    assert listed == list(views.pushed_shared(hub.hub.state, 0))
    registrar = await hub.client("registrar", site="kon-plong")
    result = await registrar.call("attendance.set", site="kon-plong", category="workers", count=120)
    first = await chair.next_push(lambda f: f["type"] == "event" and f["seq"] >= result["seq"])
    frame_own = {"type", "seq", "now", "since", "events", "sites", "questions"}  # the frame's envelope and its rows
    assert first.keys() - frame_own <= set(listed)


async def test_a_new_subscriber_is_not_sent_the_changes_its_catch_up_holds(start_hub: StartHub,
                                                                          config: Config) -> None:
    slow_tick = config.limits.model_copy(update={"fanout_ms": 500})  # changes wait for the tick after subscribe
    hub = await start_hub(cfg=config.model_copy(update={"limits": slow_tick}))
    registrar = await hub.client("registrar", site="kon-plong")
    before = await registrar.call("attendance.set", site="kon-plong", category="workers", count=120)
    chair = await hub.client("chair")
    caught_up = (await chair.call("subscribe"))["seq"]
    assert caught_up == before["seq"]
    snapshot = await chair.next_push()
    assert snapshot["type"] == "snapshot" and snapshot["state"]["totals"]["attendance"] == 120
    with pytest.raises(asyncio.TimeoutError):  # the next ticks: nothing is news to it
        await chair.next_push(timeout=1.2)
    after = await registrar.call("attendance.set", site="kon-plong", category="workers", count=130)
    pushed = await chair.next_push()
    assert pushed["type"] == "event" and pushed["seq"] == after["seq"] > caught_up
    assert pushed["totals"]["attendance"] == 130 and chair.pushed.empty()


async def test_a_heartbeat_not_stored_still_reaches_a_subscriber_at_the_same_seq(start_hub: StartHub, config: Config,
                                                                                  clock: ManualClock) -> None:
    slow_tick = config.limits.model_copy(update={"fanout_ms": 500})
    hub = await start_hub(cfg=config.model_copy(update={"limits": slow_tick}), clock=clock)
    tech = await hub.client("technician", site="kon-plong")
    await tech.call("site.checkin", site="kon-plong", technician="A Tuấn")
    await tech.call("site.heartbeat", site="kon-plong", rtt_ms=35)  # the first is stored
    await asyncio.sleep(0.6)  # a tick takes those changes
    clock.advance(6)  # past the heartbeat's push interval, short of its store interval and the timeout
    chair = await hub.client("chair")
    caught_up = (await chair.call("subscribe"))["seq"]
    await chair.next_push(lambda f: f["type"] == "snapshot")
    beat = await tech.call("site.heartbeat", site="kon-plong", rtt_ms=35)
    assert beat["seq"] == caught_up  # not stored: the seq did not move, yet the site's row did
    pushed = await chair.next_push(timeout=2)
    site = next(s for s in pushed["sites"] if s["id"] == "kon-plong")
    assert pushed["seq"] == caught_up and site["last_heartbeat"] is not None


async def test_ticks_waiting_on_a_slow_disk_each_send_their_own_changes(start_hub: StartHub,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit slower than two ticks (a loaded machine's fsync): each held tick, once durable, sends the frame
    it built, in order; none is lost to the next one's, none sent twice (before, the later frame went out at
    the earlier commit, ahead of its own, and again at its own)."""
    commit = SQLiteLog._commit

    def slow_commit(conn: sqlite3.Connection, batch: list) -> BaseException | None:  # type: ignore[type-arg]
        time.sleep(0.4)
        return commit(conn, batch)

    monkeypatch.setattr(SQLiteLog, "_commit", staticmethod(slow_commit))
    hub = await start_hub()
    chair = await hub.client("chair", subscribe=True)
    kon_plong, dak_ha = await hub.client("registrar", site="kon-plong"), await hub.client("registrar", site="dak-ha")
    first = asyncio.ensure_future(kon_plong.call("attendance.set", site="kon-plong", category="workers", count=40))
    await asyncio.sleep(0.15)  # a tick or two builds a frame of the first while its commit is still on the disk
    second = asyncio.ensure_future(dak_ha.call("attendance.set", site="dak-ha", category="workers", count=70))
    seqs = [(await first)["seq"], (await second)["seq"]]
    frames = [await chair.next_push(lambda f: f["type"] == "event", timeout=3) for _ in range(2)]
    assert [f["seq"] for f in frames] == seqs
    counts = [{s["id"]: s["attendance"].get("workers") for s in f["sites"]} for f in frames]
    assert counts[0]["kon-plong"] == 40 and counts[0].get("dak-ha") is None and counts[1]["dak-ha"] == 70
    assert [[e["seq"] for e in f["events"]] for f in frames] == [[seqs[0]], [seqs[1]]]
    with pytest.raises(asyncio.TimeoutError):  # and nothing sent twice
        await chair.next_push(lambda f: f["type"] == "event", timeout=0.6)


async def test_resume_with_since_misses_nothing(hub: RunningHub) -> None:
    registrar = await hub.client("registrar", site="sa-thay")
    first = await registrar.call("attendance.set", site="sa-thay", category="workers", count=10)
    await registrar.call("question.submit", **{**QUESTION, "site": "sa-thay"})
    await registrar.call("attendance.set", site="ngoc-hoi" if False else "sa-thay", category="guests", count=3)
    viewer = await hub.client("viewer")
    answer = await viewer.call("subscribe", since=first["seq"])
    assert answer["mode"] == "delta"
    frame = await viewer.next_push(lambda f: f["type"] == "event")
    site = next(s for s in frame["sites"] if s["id"] == "sa-thay")
    assert site["attendance"] == {"workers": 10, "guests": 3}
    assert len(frame["questions"]) == 1 and frame["seq"] == hub.hub.state.seq
    fresh = await hub.client("viewer")
    assert (await fresh.call("subscribe"))["mode"] == "snapshot"


async def test_state_is_rebuilt_from_the_log_after_restart(start_hub: StartHub) -> None:
    first = await start_hub()
    registrar = await first.client("registrar", site="dak-to")
    await registrar.call("attendance.set", site="dak-to", category="workers", count=220)
    moderator = await first.client("moderator")
    q = await moderator.call("question.submit", **{**QUESTION, "site": "dak-to", "agency": "sxd"})
    await moderator.call("question.update", question=q["question"], status="deferred")
    await moderator.call("event.phase", phase="live")
    token = registrar.token
    await first.close_clients()
    await first.server.close()

    second = await start_hub()
    state = second.hub.state
    assert state.sites["dak-to"].attendance == {"workers": 220}
    assert state.questions[q["question"]].status == "deferred" and state.phase == "live"
    again = HubClient(second.ws_url, token)
    await again.connect()
    retried = await again.call("attendance.set", site="dak-to", category="workers", count=999,
                               op_id="never-used-before")
    assert retried["count"] == 999
    await again.close()


async def test_http_state_needs_a_token(hub: RunningHub) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{hub.url}/api/state") as response:
            assert response.status == 401
        async with http.get(f"{hub.url}/api/state", headers={"Authorization": "Bearer nope.nope"}) as response:
            assert response.status == 401
        token = hub.token("agency", agency="bhxh")
        async with http.get(f"{hub.url}/api/state", headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
            body = await response.json()
        assert body["seq"] == 0 and len(body["sites"]) == 11 and body["totals"]["expected"] == 2300
        async with http.get(f"{hub.url}/healthz") as response:
            assert (await response.json())["status"] == "ok"


async def test_agency_snapshot_holds_only_its_questions(hub: RunningHub) -> None:
    moderator = await hub.client("moderator")
    await moderator.call("question.submit", **{**QUESTION, "agency": "bhxh"})
    await moderator.call("question.submit", **{**QUESTION, "agency": "sxd"})
    agency = await hub.client("agency", agency="bhxh")
    await agency.call("subscribe")
    snapshot = await agency.next_push(lambda f: f["type"] == "snapshot")
    assert [q["agency"] for q in snapshot["state"]["questions"]] == ["bhxh"]


async def test_foreign_origin_is_refused_but_no_origin_passes(hub: RunningHub) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(hub.ws_url, additional_headers={"Origin": "http://evil.example"})
    assert refused.value.response.status_code == 403
    own = hub.url.replace("http://", "")
    client = HubClient(hub.ws_url, hub.token("viewer"), origin=f"http://{own}")
    await client.connect()
    await client.close()


async def test_retry_of_an_old_op_id_is_answered_from_the_log(hub: RunningHub, monkeypatch) -> None:
    monkeypatch.setattr("hub.core.state.RECENT_OPS", 3)
    client = await hub.client("registrar", site="dak-ha")
    first = await client.call("attendance.add", site="dak-ha", category="workers", delta=5, op_id="old-1")
    for n in range(5):
        await client.call("attendance.add", site="dak-ha", category="workers", delta=1, op_id=f"later-{n}")
    assert "old-1" not in hub.hub.state.ops and len(hub.hub.state.ops) == 3  # memory stays bounded
    again = await client.call("attendance.add", site="dak-ha", category="workers", delta=5, op_id="old-1")
    assert again == first and again["count"] == 5
    assert hub.hub.state.sites["dak-ha"].attendance["workers"] == 10 and hub.hub.log.count() == 6


async def test_a_refused_write_is_an_error_answer_and_the_retry_stores_it(hub: RunningHub, monkeypatch) -> None:
    client = await hub.client("registrar", site="dak-ha")
    await client.call("attendance.set", site="dak-ha", category="workers", count=7)
    real_commit = SQLiteLog.__dict__["_commit"]  # the staticmethod itself
    refuse = staticmethod(lambda conn, batch: sqlite3.OperationalError("disk I/O error"))
    monkeypatch.setattr(SQLiteLog, "_commit", refuse)
    failed, after = await asyncio.gather(
        client.send("attendance.add", site="dak-ha", category="workers", delta=5, op_id="refused-1"),
        client.send("ping", sent=1.0))  # answered after the failed one, in order
    assert failed["success"] is False and failed["error"]["code"] == "internal_error"
    assert "retry with the same op_id" in failed["error"]["message"]
    assert after["success"] is True
    assert hub.hub.state.sites["dak-ha"].attendance["workers"] == 7  # rebuilt from the log: the change is not there

    monkeypatch.setattr(SQLiteLog, "_commit", real_commit)
    retried = await client.call("attendance.add", site="dak-ha", category="workers", delta=5, op_id="refused-1")
    assert retried["count"] == 12 and hub.hub.log.count() == 2


async def test_changes_folded_on_top_of_a_failed_write_are_refused_too(hub: RunningHub, monkeypatch) -> None:
    """Commands folded while a doomed commit was on its way to the disk were decided on a state holding its
    change; once it fails they are refused as well, so the log never keeps them without it."""
    real_commit = SQLiteLog.__dict__["_commit"].__func__
    disk = threading.Event()
    commits: list[list[int]] = []

    def first_fails(conn: sqlite3.Connection, batch: list) -> BaseException | None:
        commits.append([event.seq for event, _, _ in batch])
        if len(commits) == 1:
            disk.wait(10)  # the test folds more changes meanwhile
            return sqlite3.OperationalError("disk I/O error")
        return real_commit(conn, batch)
    monkeypatch.setattr(SQLiteLog, "_commit", staticmethod(first_fails))
    client = await hub.client("registrar", site="dak-ha")
    base = hub.hub.state.seq
    lost = asyncio.ensure_future(client.send("attendance.add", site="dak-ha", category="workers", delta=5, op_id="lost"))
    while not commits:
        await asyncio.sleep(0.001)
    on_top = [asyncio.ensure_future(client.send("attendance.add", site="dak-ha", category="workers", delta=1,
                                                op_id=f"on-top-{n}")) for n in range(3)]
    while hub.hub.state.seq < base + 4:  # all three folded on top of the one being written
        await asyncio.sleep(0.001)
    disk.set()
    answers = [await lost] + [await answer for answer in on_top]
    assert [a["success"] for a in answers] == [False] * 4
    assert {a["error"]["code"] for a in answers} == {"internal_error"}
    assert hub.hub.log.count() == base and hub.hub.state.seq == base  # nothing of them kept, on disk or in memory

    for op_id, delta in [("lost", 5), ("on-top-0", 1), ("on-top-1", 1), ("on-top-2", 1)]:
        await client.call("attendance.add", site="dak-ha", category="workers", delta=delta, op_id=op_id)
    assert [event.seq for event in hub.hub.log.read(base)] == [base + 1, base + 2, base + 3, base + 4]
    assert hub.hub.state.sites["dak-ha"].attendance["workers"] == 8


async def test_after_a_failed_write_dashboards_get_the_rebuilt_state_never_the_lost_change(hub: RunningHub,
                                                                                          monkeypatch) -> None:
    chair = await hub.client("chair", subscribe=True)
    registrar = await hub.client("registrar", site="dak-ha")
    kept = await registrar.call("attendance.set", site="dak-ha", category="workers", count=7)
    await chair.next_push(lambda f: f["type"] == "event" and f["seq"] >= kept["seq"])
    real_commit = SQLiteLog.__dict__["_commit"]
    monkeypatch.setattr(SQLiteLog, "_commit", staticmethod(lambda conn, batch: sqlite3.OperationalError("disk full")))
    lost = await registrar.send("attendance.set", site="dak-ha", category="workers", count=99, op_id="lost")
    assert lost["success"] is False
    monkeypatch.setattr(SQLiteLog, "_commit", real_commit)

    def shows_dak_ha(frame: dict) -> bool:
        return frame["type"] == "event" and any(site["id"] == "dak-ha" for site in frame.get("sites", []))
    rebuilt = await chair.next_push(shows_dak_ha)  # with no new command: the state as the log holds it
    assert next(s for s in rebuilt["sites"] if s["id"] == "dak-ha")["attendance"]["workers"] == 7

    stored = await registrar.call("attendance.set", site="dak-ha", category="workers", count=8, op_id="stored")
    assert stored["seq"] == kept["seq"] + 1  # the lost change's seq, reused
    frames = [rebuilt, await chair.next_push(lambda f: f["type"] == "event" and f["seq"] >= stored["seq"])]
    while not chair.pushed.empty():
        frames.append(chair.pushed.get_nowait())
    pushed = [e for frame in frames for e in frame.get("events", [])]
    assert all(e["data"].get("count") != 99 for e in pushed), pushed
    assert [e["data"]["count"] for e in pushed if e["seq"] == stored["seq"]] == [8]


async def test_a_dashboard_subscribing_during_a_failed_write_gets_the_rebuilt_state(hub: RunningHub,
                                                                                    monkeypatch) -> None:
    registrar = await hub.client("registrar", site="dak-ha")
    kept = await registrar.call("attendance.set", site="dak-ha", category="workers", count=7)
    real_commit = SQLiteLog.__dict__["_commit"].__func__
    disk = threading.Event()
    commits: list[int] = []

    def first_fails(conn: sqlite3.Connection, batch: list) -> BaseException | None:
        commits.append(len(batch))
        if len(commits) == 1:
            disk.wait(10)
            return sqlite3.OperationalError("disk I/O error")
        return real_commit(conn, batch)
    monkeypatch.setattr(SQLiteLog, "_commit", staticmethod(first_fails))
    lost = asyncio.ensure_future(registrar.send("attendance.set", site="dak-ha", category="workers", count=99,
                                                op_id="lost"))
    while not commits:  # the change is folded and on its way to the disk
        await asyncio.sleep(0.001)
    chair = await hub.client("chair")
    assert (await chair.call("subscribe"))["seq"] == kept["seq"] + 1  # its catch-up would show the change
    disk.set()
    assert (await lost)["success"] is False
    snapshot = await chair.next_push(lambda f: f["type"] == "snapshot")
    assert snapshot["seq"] == kept["seq"]
    site = next(s for s in snapshot["state"]["sites"] if s["id"] == "dak-ha")
    assert site["attendance"]["workers"] == 7


async def test_a_client_far_ahead_of_the_disk_is_paused_then_answered_in_order(hub: RunningHub, monkeypatch) -> None:
    monkeypatch.setattr("hub.protocol.connection.PENDING_ANSWERS", 8)
    real_commit = SQLiteLog.__dict__["_commit"].__func__
    disk = threading.Event()  # the disk is stuck until the test lets it go

    def stuck_commit(conn: sqlite3.Connection, batch: list) -> BaseException | None:
        disk.wait(10)
        return real_commit(conn, batch)
    monkeypatch.setattr(SQLiteLog, "_commit", staticmethod(stuck_commit))
    moderator = await hub.client("moderator")  # a role without a rate limit
    stored = asyncio.ensure_future(moderator.send("event.phase", phase="live"))
    arrived: list[float] = []
    pings = [asyncio.ensure_future(moderator.send("ping", sent=float(n))) for n in range(30)]
    for ping in pings:
        ping.add_done_callback(lambda done: arrived.append(done.result()["result"]["sent"]))
    await asyncio.sleep(0.5)
    [conn] = [c for c in hub.hub.connections if c.who is not None and c.who.role == "moderator"]
    assert len(conn.answers) == 8 and not stored.done() and not arrived  # reading paused; nothing overtook

    disk.set()
    first = await asyncio.wait_for(stored, 10)
    await asyncio.wait_for(asyncio.gather(*pings), 10)
    assert first["success"] and hub.hub.state.phase == "live"
    assert arrived == [float(n) for n in range(30)]


async def test_a_resumed_dashboard_holds_the_timeline_exactly(clocked_hub: RunningHub, clock) -> None:
    """Only the timeline's last point moves; a dashboard that resumes by seq after it moved and a point was
    added, or that hears of both in one tick, still ends with the timeline a snapshot shows."""
    hub = clocked_hub
    registrar = await hub.client("registrar", site="kon-plong")

    async def count(n: int, later: float) -> dict:
        clock.advance(later)
        return await registrar.call("attendance.set", site="kon-plong", category="workers", count=n)

    def merged(timeline: list, frame: dict) -> list:  # what hub.js and bench/storm.py do with a frame
        tail = frame.get("timeline_tail") or []
        return [p for p in timeline if p[0] < tail[0][0]] + tail if tail else timeline

    await count(10, 0)  # points stay 10 s from the one before the last: the last moves until then
    await count(20, 5)
    chair = await hub.client("chair")
    answer = await chair.call("subscribe")
    snapshot = await chair.next_push(lambda f: f["type"] == "snapshot")
    timeline = snapshot["state"]["timeline"]
    since = answer["seq"]
    await chair.close()
    await count(30, 3)  # the last point moves...
    await count(40, 4)  # ...and one is added after it, while the dashboard is away
    resumed = await hub.client("chair")
    await resumed.call("subscribe", since=since)
    timeline = merged(timeline, await resumed.next_push(lambda f: f["type"] == "event"))
    await count(50, 3)  # moved again, then a point added, both within one tick
    last = await count(60, 4)
    frame = await resumed.next_push(lambda f: f["type"] == "event" and f["seq"] >= last["seq"])
    timeline = merged(timeline, frame)
    state = views.snapshot(hub.hub.state)
    assert [p[1] for p in state["timeline"]] == [10, 30, 50, 60] and timeline == state["timeline"]
