"""Site readiness over real websockets: technician flows, heartbeats, and status moved by a controllable clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from hub.core import views
from hub.core.model import SiteState
from hub.core.state import derive_status
from sites.client import CommandFailed, HubClient

from .conftest import ManualClock, RunningHub

SITE = "dak-ha"


async def eventually(check: Callable[[], bool], timeout: float = 5) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout)


async def transitions(running: RunningHub, site: str = SITE) -> list[tuple[str, str]]:
    """(previous, status) of every stored site.status event of a site, once all are durable."""
    await running.hub.release.wait(running.hub.state.seq)
    return [(e.data["previous"], e.data["status"]) for e in running.hub.log.read(0)
            if e.type == "site.status" and e.site == site]


async def get_ready(running: RunningHub) -> HubClient:
    tech = await running.client("technician", site=SITE)
    await tech.call("site.checkin", site=SITE, technician="Nguyễn Văn Hùng", phone="0260 3862 123")
    for item in running.config.required_checks:
        await tech.call("site.check", site=SITE, item=item, ok=True)
    await tech.call("site.heartbeat", site=SITE, rtt_ms=35)
    return tech


def site(running: RunningHub) -> SiteState:
    return running.hub.state.sites[SITE]


async def test_status_rules_with_the_clock(clocked_hub: RunningHub, clock: ManualClock) -> None:
    timeout = clocked_hub.config.heartbeat.timeout_seconds
    tech = await clocked_hub.client("technician", site=SITE)
    assert site(clocked_hub).status == "offline"
    await tech.call("site.checkin", site=SITE, technician="Nguyễn Văn Hùng")
    assert site(clocked_hub).status == "checking"
    for item in clocked_hub.config.required_checks:
        await tech.call("site.check", site=SITE, item=item, ok=True)
    assert site(clocked_hub).status == "ready"
    await tech.call("site.incident", site=SITE, kind="audio", open=True, note="Micro chủ tọa rè")
    assert site(clocked_hub).status == "degraded"
    await tech.call("site.incident", site=SITE, kind="audio", open=False)
    assert site(clocked_hub).status == "ready"
    await tech.call("site.check", site=SITE, item="network", ok=False, note="Mất gói")
    assert site(clocked_hub).status == "degraded"
    await tech.call("site.check", site=SITE, item="network", ok=True)
    await tech.call("site.heartbeat", site=SITE, rtt_ms=40)
    beat = clock()
    clock.advance(timeout)
    await asyncio.sleep(1.2)  # two ticks of the status loop: exactly at the timeout it is still fresh
    assert site(clocked_hub).status == "ready"
    clock.advance(0.01)
    await eventually(lambda: site(clocked_hub).status == "lost")  # no traffic at all: the status loop sees it
    assert site(clocked_hub).status_since - beat <= timeout + 1
    clock.advance(120)
    await tech.call("site.heartbeat", site=SITE, rtt_ms=40)
    assert site(clocked_hub).status == "ready"
    assert await transitions(clocked_hub) == [
        ("offline", "checking"), ("checking", "ready"), ("ready", "degraded"), ("degraded", "ready"),
        ("ready", "degraded"), ("degraded", "ready"), ("ready", "lost"), ("lost", "ready")]


async def test_never_ready_goes_back_offline_not_lost(clocked_hub: RunningHub, clock: ManualClock) -> None:
    tech = await clocked_hub.client("technician", site=SITE)
    await tech.call("site.checkin", site=SITE, technician="Y Bình")
    clock.advance(clocked_hub.config.heartbeat.timeout_seconds + 0.5)
    await eventually(lambda: site(clocked_hub).status == "offline")
    await tech.call("site.heartbeat", site=SITE)
    assert site(clocked_hub).status == "checking"
    assert await transitions(clocked_hub) == [("offline", "checking"), ("checking", "offline"), ("offline", "checking")]


async def test_lost_then_reconnected_is_pushed_to_the_chair(clocked_hub: RunningHub, clock: ManualClock) -> None:
    tech = await get_ready(clocked_hub)
    chair = await clocked_hub.client("chair", subscribe=True)
    clock.advance(clocked_hub.config.heartbeat.timeout_seconds + 0.5)

    def status_event(status: str) -> Callable[[dict[str, Any]], bool]:
        return lambda f: any(e["type"] == "site.status" and e["site"] == SITE and e["data"]["status"] == status
                             for e in f.get("events", []))
    lost = await chair.next_push(status_event("lost"))
    assert next(s for s in lost["sites"] if s["id"] == SITE)["status"] == "lost"
    await tech.call("site.heartbeat", site=SITE, rtt_ms=50)
    back = await chair.next_push(status_event("ready"))
    event = next(e for e in back["events"] if e["type"] == "site.status")
    assert event["data"] == {"status": "ready", "previous": "lost"}


async def test_false_video_tick_is_flagged(clocked_hub: RunningHub) -> None:
    await get_ready(clocked_hub)
    clocked_hub.hub.record("site.presence", SITE, {"video": "absent"})
    assert site(clocked_hub).status == "degraded"
    clocked_hub.hub.record("site.presence", SITE, {"video": "unknown"})
    assert site(clocked_hub).status == "ready"


@pytest.mark.parametrize("video, video_link, expected", [
    ("absent", True, "checking"), ("absent", False, "checking"), ("present", True, "ready"),
    ("no_video", True, "checking"), ("unknown", True, "ready"), (None, True, "ready")])
def test_derive_status_with_video(config, video: str | None, video_link: bool, expected: str) -> None:
    state = SiteState(config=config.site_ids[SITE], checked_in=100.0, last_seen=100.0, video=video,
                      checks={**dict.fromkeys(config.required_checks, True), "video_link": video_link})
    assert derive_status(state, 101.0, config.heartbeat.timeout_seconds, config.required_checks) == expected


async def test_link_quality_and_sparse_heartbeat_storage(clocked_hub: RunningHub, clock: ManualClock) -> None:
    tech = await get_ready(clocked_hub)
    hb = clocked_hub.config.heartbeat

    async def stored() -> list[dict[str, Any]]:
        await clocked_hub.hub.release.wait(clocked_hub.hub.state.seq)
        return [e.data for e in clocked_hub.hub.log.read(0) if e.type == "site.heartbeat"]

    before = len(await stored())
    for rtt in (30, 31, 32):
        clock.advance(1)
        assert (await tech.call("site.heartbeat", site=SITE, rtt_ms=rtt))["link"] == "good"
    assert len(await stored()) == before  # nothing new to tell: kept in memory only
    clock.advance(1)
    answer = await tech.call("site.heartbeat", site=SITE, rtt_ms=hb.rtt_poor_ms + 120, load1=0.4)
    assert answer["link"] == "poor" and answer["link_changed"] is True
    assert (await stored())[-1] == {"rtt_ms": hb.rtt_poor_ms + 120, "load1": 0.4}
    clock.advance(hb.store_every_seconds)
    await tech.call("site.heartbeat", site=SITE, rtt_ms=hb.rtt_poor_ms + 130)
    assert len(await stored()) == before + 2  # the periodic one
    view = next(s for s in views.snapshot(clocked_hub.hub.state)["sites"] if s["id"] == SITE)
    assert view["link"] == "poor" and view["rtt_ms"] == hb.rtt_poor_ms + 130 and view["status"] == "ready"


async def test_heartbeats_before_checkin_are_not_stored(clocked_hub: RunningHub, clock: ManualClock) -> None:
    tech = await clocked_hub.client("technician", site=SITE)
    for _ in range(5):
        clock.advance(5)
        await tech.call("site.heartbeat", site=SITE, rtt_ms=20)
    await clocked_hub.hub.release.wait(clocked_hub.hub.state.seq)
    assert [e.type for e in clocked_hub.hub.log.read(0)].count("site.heartbeat") == 1
    assert site(clocked_hub).status == "offline"


@pytest.mark.parametrize("command, fields, code", [
    ("site.check", {"site": SITE, "item": "camera", "ok": True}, "conflict"),
    ("site.checkin", {"site": "kon-ray", "technician": "A"}, "unauthorized"),
    ("site.heartbeat", {"site": "kon-ray", "rtt_ms": 5}, "unauthorized"),
    ("site.checkin", {"site": SITE, "technician": "A", "phone": "call me"}, "invalid_format"),
    ("site.checkin", {"site": SITE, "technician": ""}, "invalid_format"),
    ("site.incident", {"site": SITE, "kind": "smoke", "open": True}, "invalid_format"),
    ("site.incident", {"site": SITE, "kind": "power", "open": False}, "not_found"),
    ("site.heartbeat", {"site": SITE, "rtt_ms": -1}, "invalid_format"),
    ("site.heartbeat", {"site": SITE, "cpu": {"load": 1}}, "invalid_format"),
])
async def test_technician_errors(hub: RunningHub, command: str, fields: dict[str, Any], code: str) -> None:
    tech = await hub.client("technician", site=SITE)
    with pytest.raises(CommandFailed) as failed:
        await tech.call(command, **fields)
    assert failed.value.code == code


async def test_technician_flow_and_incidents(hub: RunningHub) -> None:
    tech = await get_ready(hub)
    with pytest.raises(CommandFailed) as failed:
        await tech.call("site.check", site=SITE, item="no-such-item", ok=True)
    assert failed.value.code == "not_found"
    first = await tech.call("site.incident", site=SITE, kind="video", open=True, note="Mất hình điểm cầu tỉnh")
    second = await tech.call("site.incident", site=SITE, kind="power", open=True, note="Mất điện lưới")
    view = next(s for s in views.snapshot(hub.hub.state)["sites"] if s["id"] == SITE)
    assert view["status"] == "degraded" and view["open_incidents"] == 2
    assert {i["kind"] for i in view["incidents"]} == {"video", "power"}
    closed = await tech.call("site.incident", site=SITE, kind="power", open=False, incident=second["incident"])
    assert closed == {"site": SITE, "incident": second["incident"], "open": False, "seq": closed["seq"]}
    await tech.call("site.incident", site=SITE, kind="video", open=False, note="Đã khắc phục")
    assert site(hub).incidents[first["incident"]].close_note == "Đã khắc phục"
    assert site(hub).status == "ready"
    assert site(hub).technician == "Nguyễn Văn Hùng" and site(hub).phone == "0260 3862 123"
